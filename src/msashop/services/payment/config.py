from msashop.chassis.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    # How long the simulated provider takes to answer `tok_slow`.
    provider_delay_seconds: float = 2.0
    # One provider call may take this long before it counts as failed and is retried.
    provider_timeout_seconds: float = 0.5
    provider_attempts: int = 3
    # First wait between attempts; it doubles each time (0.1 s, 0.2 s, ...).
    provider_backoff_seconds: float = 0.1
