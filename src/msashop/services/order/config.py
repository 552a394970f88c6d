from msashop.chassis.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    # How long a saga step may wait for its reply before recovery acts (guide: 5 minutes):
    # compensate while the order is PENDING, resend once it is paid, resend compensations.
    saga_timeout_seconds: float = 300.0
    # How often the recovery job looks for overdue sagas (it also runs once at start).
    saga_sweep_seconds: float = 10.0
    # After a failed notification, the first wait before trying again; it doubles up to the cap.
    notification_retry_seconds: float = 5.0
    notification_retry_cap_seconds: float = 60.0
    # Sends of one compensation (refund, release) before it counts as failed and admins are alerted.
    compensation_attempts: int = 3
    # How long placing an order waits for the shipping service's quote (bus RPC) before a 503.
    shipping_timeout_seconds: float = 2.0
