from msashop.chassis.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    # A saga still RUNNING this long after the order was placed is compensated (guide: 5 minutes).
    saga_timeout_seconds: float = 300.0
    # How often the job looks for overdue sagas.
    saga_sweep_seconds: float = 10.0
    # How long placing an order waits for the shipping service's quote (bus RPC) before a 503.
    shipping_timeout_seconds: float = 2.0
