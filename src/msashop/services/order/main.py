"""Composition root of the order service: the API, shipping quotes, the saga's replies, recovery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.idempotent_requests import install_idempotency
from msashop.chassis.service import Service
from msashop.contracts import events
from msashop.services.order import api
from msashop.services.order.config import OrderSettings
from msashop.services.order.domain import Step
from msashop.services.order.handlers.recovery import recover_overdue_sagas
from msashop.services.order.handlers.saga import Orchestrator, SagaPolicy
from msashop.services.order.projections import OrdersProjection
from msashop.services.order.shipping import BusShippingQuotes


def create_service(settings: OrderSettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or OrderSettings.load("order")
    # It calls user and product synchronously (GET /orders/{id}?expand=...): /ready checks them.
    service = Service(
        settings,
        migrations=Path(__file__).parent / "migrations",
        bus=bus,
        downstreams=("user", "product"),
    )
    service.include_router(api.router)
    install_idempotency(service)  # Idempotency-Key on POST /orders; expired keys purged hourly
    service.include_router(api.admin_router)
    # Shipping is priced over the bus (request/reply to the shipping service) when an order is placed.
    service.app.state.shipping_quotes = BusShippingQuotes(
        service.bus, timeout=settings.shipping_timeout_seconds
    )
    saga = Orchestrator(
        SagaPolicy(
            step_timeout=timedelta(seconds=settings.saga_timeout_seconds),
            notification_retry=timedelta(seconds=settings.notification_retry_seconds),
            notification_retry_cap=timedelta(seconds=settings.notification_retry_cap_seconds),
            compensation_attempts=settings.compensation_attempts,
        )
    )
    service.app.state.orchestrator = saga

    service.on_message(events.StockReserved.subject, saga.on_stock_reserved)
    service.on_message(events.StockReservationFailed.subject, saga.on_stock_reservation_failed)
    service.on_message(events.PaymentCaptured.subject, saga.on_payment_captured)
    service.on_message(events.PaymentDeclined.subject, saga.on_payment_declined)
    service.on_message(events.PaymentFailed.subject, saga.on_payment_failed)
    service.on_message(events.StockCommitted.subject, saga.closes(Step.COMMIT_INVENTORY))
    service.on_message(events.NotificationSent.subject, saga.closes(Step.SEND_NOTIFICATION))
    service.on_message(events.NotificationFailed.subject, saga.on_notification_failed)
    service.on_message(events.StockReleased.subject, saga.closes(Step.RELEASE_INVENTORY))
    service.on_message(events.PaymentRefunded.subject, saga.closes(Step.REFUND_PAYMENT))
    service.on_message(events.PaymentRefundSkipped.subject, saga.closes(Step.REFUND_PAYMENT))
    service.on_message(events.PaymentRefundFailed.subject, saga.on_refund_failed)

    async def catch_up_projections() -> None:
        async with service.unit_of_work() as uow:
            await OrdersProjection(uow.session).catch_up()
            await uow.commit()

    async def recover_sagas() -> None:
        await recover_overdue_sagas(service.unit_of_work, saga)

    service.on_startup(catch_up_projections)
    service.every(30.0, catch_up_projections)  # also moves the checkpoint the live path leaves alone
    service.on_startup(recover_sagas)  # sagas a crash or a stop left overdue, before new work
    service.every(settings.saga_sweep_seconds, recover_sagas)
    return service
