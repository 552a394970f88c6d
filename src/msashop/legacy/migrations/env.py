from msashop.chassis.migrations_env import run

run()
