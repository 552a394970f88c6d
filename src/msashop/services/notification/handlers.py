"""Events and commands in, notifications out: record one per user event, order outcome or admin
alert, and send it.

Each handler runs in the unit of work the chassis opened (inbox claim made); it never commits.
For events, a failed send never loses the notification: it is recorded as `recorded` and logged.
The saga's `notification.send` is answered instead: `notification.failed` records nothing, so the
saga's resent command (a new envelope id, the same idempotency key) can succeed later, and a
command for an order already notified answers `notification.sent` with the recorded one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import (
    NotificationFailed,
    NotificationSent,
    OrderCancelled,
    Payload,
    SagaCompensationFailed,
    SendNotification,
    UserRegistered,
)
from msashop.services.notification import domain
from msashop.services.notification.db import NotificationRepository
from msashop.services.notification.domain import (
    ADMINS_ID,
    Audience,
    DeliveredVia,
    Draft,
    Notification,
    NotificationType,
    Recipient,
    Sender,
)
from msashop.services.notification.faults import FaultFile

log = structlog.get_logger()
SOURCE = "notification"


def _reply(uow: UnitOfWork, payload: Payload, order_id: str, cause: Envelope) -> None:
    uow.publish(
        wrap(
            payload,
            source=SOURCE,
            key=order_id,
            cause=cause,
            event_id=deterministic_id(SOURCE, cause.id, payload.subject),
        )
    )


def _sent(order_id: str, n: Notification) -> NotificationSent:
    return NotificationSent(order_id=order_id, notification_id=n.id, delivered_via=n.delivered_via.value)


class NotificationHandlers:
    """The handlers, given the sender port, the fault file and where admin alerts are emailed."""

    def __init__(self, sender: Sender, faults: FaultFile | None = None, admin_email: str = "") -> None:
        self.sender = sender
        self.faults = faults or FaultFile(None)
        self.admin_email = admin_email

    async def user_registered(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = UserRegistered.model_validate(envelope.data)
        recipient = Recipient(user_id=event.user_id, email=event.email, name=event.name)
        await NotificationRepository(uow.session).save_recipient(recipient)
        await self._notify(uow, event.user_id, domain.welcome(event.name))

    async def send(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """The saga's last step: tell the user their order is confirmed, once, and answer."""
        cmd = SendNotification.model_validate(envelope.data)
        self.faults.check(cmd.user_id)  # raises: retried, then dead-lettered; the saga resends
        if cmd.type != NotificationType.ORDER_CONFIRMED:
            log.warning("notification.unknown_type", type=cmd.type, order_id=cmd.order_id)
            _reply(
                uow, NotificationFailed(order_id=cmd.order_id, reason="unknown_type"), cmd.order_id, envelope
            )
            return
        draft = domain.order_confirmed(cmd.order_id, cmd.total, cmd.currency)
        repo = NotificationRepository(uow.session)
        existing = await repo.find(user_id=cmd.user_id, type=draft.type, order_id=draft.order_id)
        if existing is not None:
            log.info("notification.send_answered_again", order_id=cmd.order_id, notification_id=existing.id)
            _reply(uow, _sent(cmd.order_id, existing), cmd.order_id, envelope)
            return
        recipient = await repo.get_recipient(cmd.user_id)
        try:
            via = await self.sender.send(draft.email_to(recipient)) if recipient else DeliveredVia.RECORDED
        except Exception as exc:  # noqa: BLE001 - any failed delivery is an answer to the saga
            log.warning(
                "notification.send_failed", type=draft.type, order_id=cmd.order_id, error=type(exc).__name__
            )
            _reply(
                uow,
                NotificationFailed(order_id=cmd.order_id, reason=type(exc).__name__),
                cmd.order_id,
                envelope,
            )
            return
        recorded = await self._record(repo, cmd.user_id, draft, via)
        _reply(uow, _sent(cmd.order_id, recorded), cmd.order_id, envelope)

    async def order_cancelled(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = OrderCancelled.model_validate(envelope.data)
        self.faults.check(event.user_id)
        await self._notify(uow, event.user_id, domain.order_cancelled(event.order_id, event.reason))

    async def compensation_failed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """A saga could not undo a step: one alert per order and step, for every admin."""
        event = SagaCompensationFailed.model_validate(envelope.data)
        repo = NotificationRepository(uow.session)
        if await repo.find_admin_alert(order_id=event.order_id, step=event.step) is not None:
            log.info("notification.admin_alert_duplicate_skipped", order_id=event.order_id, step=event.step)
            return
        log.error(
            "notification.admin_alert",
            order_id=event.order_id,
            saga_id=event.saga_id,
            step=event.step,
            reason=event.reason,
        )
        draft = domain.admin_alert(event.order_id, event.saga_id, event.step, event.reason)
        via = DeliveredVia.RECORDED
        if self.admin_email:
            via = await self._deliver(draft.email_to_admins(self.admin_email), draft)
        await self._record(repo, ADMINS_ID, draft, via, audience=Audience.ADMINS, step=event.step)

    async def _notify(self, uow: UnitOfWork, user_id: str, draft: Draft) -> None:
        repo = NotificationRepository(uow.session)
        if await repo.find(user_id=user_id, type=draft.type, order_id=draft.order_id) is not None:
            log.info("notification.duplicate_skipped", type=draft.type, order_id=draft.order_id)
            return
        recipient = await repo.get_recipient(user_id)
        # No user.registered seen for this user (e.g. the seeded admin): nowhere to send to.
        via = await self._deliver(draft.email_to(recipient), draft) if recipient else DeliveredVia.RECORDED
        await self._record(repo, user_id, draft, via)

    async def _record(
        self,
        repo: NotificationRepository,
        user_id: str,
        draft: Draft,
        via: DeliveredVia,
        *,
        audience: Audience = Audience.USER,
        step: str | None = None,
    ) -> Notification:
        notification = Notification(
            id=str(uuid.uuid4()),
            user_id=user_id,
            type=draft.type,
            order_id=draft.order_id,
            message=draft.message,
            created_at=datetime.now(UTC),
            delivered_via=via,
            audience=audience,
            step=step,
        )
        await repo.add(notification)
        log.info("notification.recorded", type=draft.type, order_id=draft.order_id, delivered_via=via)
        return notification

    async def _deliver(self, email: domain.Email, draft: Draft) -> DeliveredVia:
        try:
            return await self.sender.send(email)
        except Exception as exc:  # noqa: BLE001 - a mail outage must not lose the notification
            log.warning(
                "notification.send_failed", type=draft.type, error=type(exc).__name__, detail=str(exc)
            )
            return DeliveredVia.RECORDED
