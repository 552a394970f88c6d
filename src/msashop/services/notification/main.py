"""Composition root of the notification service."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts.events import OrderCancelled, SagaCompensationFailed, SendNotification, UserRegistered
from msashop.services.notification import api
from msashop.services.notification.config import NotificationSettings
from msashop.services.notification.domain import Sender
from msashop.services.notification.faults import FaultFile
from msashop.services.notification.handlers import NotificationHandlers
from msashop.services.notification.sender import RecordingSender, SmtpSender


def build_sender(settings: NotificationSettings) -> Sender:
    if not settings.smtp_host:
        return RecordingSender()
    return SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.smtp_from,
        timeout=settings.smtp_timeout_seconds,
    )


def create_service(
    settings: NotificationSettings | None = None, bus: EventBus | None = None, sender: Sender | None = None
) -> Service:
    settings = settings or NotificationSettings.load("notification")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(api.router)
    handlers = NotificationHandlers(
        sender or build_sender(settings), FaultFile(settings.fault_file), admin_email=settings.admin_email
    )
    service.on_message(UserRegistered.subject, handlers.user_registered)
    # order.confirmed is not consumed: the saga's notification.send is the one confirmation.
    service.on_message(SendNotification.subject, handlers.send)
    service.on_message(OrderCancelled.subject, handlers.order_cancelled)
    service.on_message(SagaCompensationFailed.subject, handlers.compensation_failed)
    return service
