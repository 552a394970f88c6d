"""Composition root of the order service: the API, shipping quotes, the saga's replies, the deadline job."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts import events
from msashop.services.order import api
from msashop.services.order.config import OrderSettings
from msashop.services.order.domain import Step
from msashop.services.order.handlers import saga
from msashop.services.order.shipping import BusShippingQuotes


def create_service(settings: OrderSettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or OrderSettings.load("order")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(api.router)
    # Shipping is priced over the bus (request/reply to the shipping service) when an order is placed.
    service.app.state.shipping_quotes = BusShippingQuotes(
        service.bus, timeout=settings.shipping_timeout_seconds
    )

    service.on_message(events.StockReserved.subject, saga.on_stock_reserved)
    service.on_message(events.StockReservationFailed.subject, saga.on_stock_reservation_failed)
    service.on_message(events.PaymentCaptured.subject, saga.on_payment_captured)
    service.on_message(events.PaymentDeclined.subject, saga.on_payment_declined)
    service.on_message(events.PaymentFailed.subject, saga.on_payment_failed)
    service.on_message(events.StockCommitted.subject, saga.closes(Step.COMMIT_INVENTORY))
    service.on_message(events.StockReleased.subject, saga.closes(Step.RELEASE_INVENTORY))
    service.on_message(events.PaymentRefunded.subject, saga.closes(Step.REFUND_PAYMENT))

    async def expire_overdue_sagas() -> None:
        await saga.expire_overdue_sagas(service.unit_of_work)

    service.every(settings.saga_sweep_seconds, expire_overdue_sagas)
    return service
