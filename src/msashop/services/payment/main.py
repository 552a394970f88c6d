"""Composition root of the payment service."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts.events import ChargePayment, RefundPayment
from msashop.services.payment import api
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.domain import PaymentProvider
from msashop.services.payment.handlers import PaymentHandlers
from msashop.services.payment.provider import SimulatedProvider


def create_service(
    settings: PaymentSettings | None = None,
    bus: EventBus | None = None,
    provider: PaymentProvider | None = None,
) -> Service:
    settings = settings or PaymentSettings.load("payment")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(api.router)
    handlers = PaymentHandlers(
        provider or SimulatedProvider(slow_delay=settings.provider_delay_seconds),
        timeout=settings.provider_timeout_seconds,
        attempts=settings.provider_attempts,
        backoff=settings.provider_backoff_seconds,
    )
    service.on_message(ChargePayment.subject, handlers.charge)
    service.on_message(RefundPayment.subject, handlers.refund)
    return service
