"""`msashop up`: runs the broker, the token store, every service and the gateway as child processes."""
