"""Events in, notifications out: record one per user event or order outcome, and send it.

Each handler runs in the unit of work the chassis opened (inbox claim made); it never commits.
A failed send never loses the notification: it is recorded as `recorded` and logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope
from msashop.contracts.events import OrderCancelled, OrderConfirmed, UserRegistered
from msashop.services.notification import domain
from msashop.services.notification.db import NotificationRepository
from msashop.services.notification.domain import DeliveredVia, Draft, Notification, Recipient, Sender
from msashop.services.notification.faults import FaultFile

log = structlog.get_logger()


class NotificationHandlers:
    """The event handlers, given the sender port."""

    def __init__(self, sender: Sender, faults: FaultFile | None = None) -> None:
        self.sender = sender
        self.faults = faults or FaultFile(None)

    async def user_registered(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = UserRegistered.model_validate(envelope.data)
        recipient = Recipient(user_id=event.user_id, email=event.email, name=event.name)
        await NotificationRepository(uow.session).save_recipient(recipient)
        await self._notify(uow, event.user_id, domain.welcome(event.name))

    async def order_confirmed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = OrderConfirmed.model_validate(envelope.data)
        self.faults.check(event.user_id)
        await self._notify(
            uow, event.user_id, domain.order_confirmed(event.order_id, event.total, event.currency)
        )

    async def order_cancelled(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = OrderCancelled.model_validate(envelope.data)
        self.faults.check(event.user_id)
        await self._notify(uow, event.user_id, domain.order_cancelled(event.order_id, event.reason))

    async def _notify(self, uow: UnitOfWork, user_id: str, draft: Draft) -> None:
        repo = NotificationRepository(uow.session)
        if await repo.exists(user_id=user_id, type=draft.type, order_id=draft.order_id):
            log.info("notification.duplicate_skipped", type=draft.type, order_id=draft.order_id)
            return
        via = await self._deliver(await repo.get_recipient(user_id), draft)
        await repo.add(
            Notification(
                id=str(uuid.uuid4()),
                user_id=user_id,
                type=draft.type,
                order_id=draft.order_id,
                message=draft.message,
                created_at=datetime.now(UTC),
                delivered_via=via,
            )
        )
        log.info("notification.recorded", type=draft.type, order_id=draft.order_id, delivered_via=via)

    async def _deliver(self, recipient: Recipient | None, draft: Draft) -> DeliveredVia:
        if recipient is None:
            # No user.registered seen for this user (e.g. the seeded admin): nowhere to send to.
            return DeliveredVia.RECORDED
        try:
            return await self.sender.send(draft.email_to(recipient))
        except Exception as exc:  # noqa: BLE001 - a mail outage must not lose the notification
            log.warning(
                "notification.send_failed", type=draft.type, error=type(exc).__name__, detail=str(exc)
            )
            return DeliveredVia.RECORDED
