"""The checkout saga's orchestrator: every reply moves the order and queues the next command.

    placed -> inventory.reserve -> reserved -> payment.charge -> captured -> CONFIRMED,
    inventory.commit + notification.send -> committed + sent -> saga COMPLETED
    reservation_failed / declined / failed -> CANCELLED, compensations (refund, release) ->
    their replies -> saga FAILED; refund_failed -> COMPENSATION_FAILED + an admin alert

Each handler runs in the unit of work the chassis opened for the reply (inbox claim made, commit
after return): the order's new events, its read models, the saga row and the commands it causes
land in one transaction. A reply only acts if the saga waits for it and the order is in the
state it expects, so replies that arrive twice, late or out of order change nothing. Deadlines
and resends are recovery.py's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id
from msashop.contracts.events import (
    ChargePayment,
    NotificationFailed,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    PaymentRefundFailed,
    SagaCompensationFailed,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.order.db import SagaRepository
from msashop.services.order.domain import Order, OrderStatus, Saga, Step, StepStatus
from msashop.services.order.handlers import commands, store
from msashop.services.order.handlers.commands import queue

log = structlog.get_logger()
saga_compensation_failures_total = Counter(
    "saga_compensation_failures_total", "Compensations that could not be done (admins alerted)", ["step"]
)
Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SagaPolicy:
    step_timeout: timedelta  # how long a step's reply may take before recovery acts
    notification_retry: timedelta  # first wait after a failed notification; doubles, capped
    notification_retry_cap: timedelta
    compensation_attempts: int  # sends of one compensation before it counts as failed


class Orchestrator:
    def __init__(self, policy: SagaPolicy) -> None:
        self.policy = policy

    # --- starting and cancelling ------------------------------------------------------------
    def start(self, uow: UnitOfWork, order: Order, saga: Saga) -> None:
        """Announce the order and ask inventory to reserve its lines."""
        created = OrderCreated(
            order_id=order.id,
            user_id=order.user_id,
            lines=commands.lines_of(order),
            total=order.total,
            currency=order.currency,
            shipping_cost=order.shipping_cost,
        )
        queue(uow, created, order.id, deterministic_id(order.id, "created"), None)
        commands.send(uow, order, saga, Step.RESERVE_INVENTORY, None)

    async def cancel(
        self, uow: UnitOfWork, order: Order, saga: Saga, *, reason: str, cause: Envelope | None = None
    ) -> None:
        """Cancel the order and undo what the saga did so far, newest step first."""
        now = _now()
        order.cancel(reason, now)
        compensations = [step for step in (Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY) if _needs(saga, step)]
        for step in compensations:
            commands.send(uow, order, saga, step, cause)
        saga.compensate(compensations, now, self.policy.step_timeout)
        cancelled = OrderCancelled(order_id=order.id, user_id=order.user_id, reason=reason)
        queue(uow, cancelled, order.id, deterministic_id(order.id, "cancelled"), cause)
        await store.save(uow, order)
        await SagaRepository(uow.session).save(saga)
        log.info(
            "order.cancelled",
            order_id=order.id,
            reason=reason,
            compensations=[s.value for s in compensations],
        )

    async def alert(
        self, uow: UnitOfWork, saga: Saga, step: Step, reason: str, cause: Envelope | None
    ) -> None:
        """A compensation failed: money or stock may be held. Tell every admin, count it, log it."""
        saga.compensation_failed(step, _now(), reason)
        alert = SagaCompensationFailed(
            order_id=saga.order_id, saga_id=saga.id, step=step.value, reason=reason
        )
        queue(uow, alert, saga.order_id, deterministic_id(saga.id, "alert", step.value), cause)
        saga_compensation_failures_total.labels(step.value).inc()
        log.error(
            "saga.compensation_failed",
            order_id=saga.order_id,
            saga_id=saga.id,
            step=step.value,
            reason=reason,
        )

    # --- replies ------------------------------------------------------------------------------
    async def _load(self, uow: UnitOfWork, order_id: str) -> tuple[Order, Saga] | None:
        saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
        order = await store.load(uow, order_id)
        if order is None or saga is None:
            log.warning("saga.reply_for_unknown_order", order_id=order_id)
            return None
        return order, saga

    async def on_stock_reserved(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = StockReserved.model_validate(envelope.data)
        if (loaded := await self._load(uow, reply.order_id)) is None:
            return
        order, saga = loaded
        now = _now()
        reserved_now = saga.finish(Step.RESERVE_INVENTORY, now)
        if reserved_now and order.status is OrderStatus.PENDING and saga.payment_token:
            saga.begin(Step.PROCESS_PAYMENT, now, self.policy.step_timeout)
            event_id, key = commands.command_key(saga, Step.PROCESS_PAYMENT)
            charge = ChargePayment(
                order_id=order.id,
                user_id=order.user_id,
                amount=order.total,
                currency=order.currency,
                token=saga.payment_token,
                idempotency_key=key,
            )
            queue(uow, charge, order.id, event_id, envelope)
            saga.payment_token = None  # it travels in the queued command; we need it no longer
        elif reserved_now and order.status is OrderStatus.CANCELLED:
            # Cancelled while the reservation was on its way: give the stock back.
            commands.send(uow, order, saga, Step.RELEASE_INVENTORY, envelope, "late-reserve")
            saga.compensate([Step.RELEASE_INVENTORY], now, self.policy.step_timeout)
        else:
            _ignored(order, saga)
        await SagaRepository(uow.session).save(saga)

    async def on_stock_reservation_failed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = StockReservationFailed.model_validate(envelope.data)
        if (loaded := await self._load(uow, reply.order_id)) is None:
            return
        order, saga = loaded
        if (
            saga.finish(Step.RESERVE_INVENTORY, _now(), error=reply.reason)
            and order.status is OrderStatus.PENDING
        ):
            await self.cancel(uow, order, saga, reason=reply.reason, cause=envelope)
            return
        _ignored(order, saga)
        await SagaRepository(uow.session).save(saga)

    async def on_payment_captured(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = PaymentCaptured.model_validate(envelope.data)
        if (loaded := await self._load(uow, reply.order_id)) is None:
            return
        order, saga = loaded
        now = _now()
        if not saga.finish(Step.PROCESS_PAYMENT, now):
            _ignored(order, saga)
            return
        saga.payment_id = reply.payment_id
        if order.status is OrderStatus.PENDING:
            order.confirm(reply.payment_id, now)
            confirmed = OrderConfirmed(
                order_id=order.id, user_id=order.user_id, total=order.total, currency=order.currency
            )
            queue(uow, confirmed, order.id, deterministic_id(order.id, "confirmed"), envelope)
            for step in (Step.COMMIT_INVENTORY, Step.SEND_NOTIFICATION):
                saga.begin(step, now, self.policy.step_timeout)
                commands.send(uow, order, saga, step, envelope)
            await store.save(uow, order)
            log.info("order.confirmed", order_id=order.id, total=str(order.total))
        else:
            # The money arrived after the order was cancelled (by the user or the timeout): undo it.
            for step in (Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY):
                commands.send(uow, order, saga, step, envelope, "late-capture")
            saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], now, self.policy.step_timeout)
            log.warning("saga.late_capture_refunded", order_id=order.id, payment_id=reply.payment_id)
        await SagaRepository(uow.session).save(saga)

    async def _on_payment_refused(
        self, envelope: Envelope, uow: UnitOfWork, order_id: str, reason: str
    ) -> None:
        if (loaded := await self._load(uow, order_id)) is None:
            return
        order, saga = loaded
        if saga.finish(Step.PROCESS_PAYMENT, _now(), error=reason) and order.status is OrderStatus.PENDING:
            await self.cancel(uow, order, saga, reason=reason, cause=envelope)
            return
        _ignored(order, saga)
        await SagaRepository(uow.session).save(saga)

    async def on_payment_declined(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = PaymentDeclined.model_validate(envelope.data)
        await self._on_payment_refused(envelope, uow, reply.order_id, "payment_declined")

    async def on_payment_failed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = PaymentFailed.model_validate(envelope.data)
        await self._on_payment_refused(envelope, uow, reply.order_id, "payment_failed")

    async def on_notification_failed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Never cancels the order (it is paid): try again later, waiting longer each time."""
        reply = NotificationFailed.model_validate(envelope.data)
        saga = await SagaRepository(uow.session).for_order(reply.order_id, for_update=True)
        if saga is None or not saga.finish(Step.SEND_NOTIFICATION, _now(), error=reply.reason):
            return
        if saga.is_running:
            attempts = saga.attempts(Step.SEND_NOTIFICATION)
            delay = min(
                self.policy.notification_retry * 2 ** (attempts - 1), self.policy.notification_retry_cap
            )
            saga.retry_later(Step.SEND_NOTIFICATION, _now(), delay)
            log.warning(
                "saga.notification_failed",
                order_id=reply.order_id,
                attempts=attempts,
                retry_in=delay.total_seconds(),
            )
        await SagaRepository(uow.session).save(saga)

    async def on_refund_failed(self, envelope: Envelope, uow: UnitOfWork) -> None:
        reply = PaymentRefundFailed.model_validate(envelope.data)
        saga = await SagaRepository(uow.session).for_order(reply.order_id, for_update=True)
        if saga is None or not saga.waiting_for(Step.REFUND_PAYMENT):
            return
        await self.alert(uow, saga, Step.REFUND_PAYMENT, f"refund failed: {reply.reason}", envelope)
        await SagaRepository(uow.session).save(saga)

    def closes(self, step: Step) -> Handler:
        """A handler for a reply that only confirms a step done (commit, notification, release, refund)."""

        async def close_step(envelope: Envelope, uow: UnitOfWork) -> None:
            order_id = str(envelope.data.get("order_id", ""))
            saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
            if saga is None or not saga.finish(step, _now()):
                return
            now = _now()
            if saga.complete_if_done(now):
                log.info("saga.completed", order_id=order_id)
            elif saga.compensated_if_done(now):
                log.info("saga.compensated", order_id=order_id)
            await SagaRepository(uow.session).save(saga)

        close_step.__name__ = f"close_{step.value.lower()}"
        return close_step


def _needs(saga: Saga, step: Step) -> bool:
    """Whether cancelling must undo the forward step that `step` compensates."""
    undoes = Step.PROCESS_PAYMENT if step is Step.REFUND_PAYMENT else Step.RESERVE_INVENTORY
    last = saga.last(undoes)
    # Never asked: nothing to undo. Refused (declined, out of stock): nothing happened either.
    return last is not None and last.status is not StepStatus.FAILED


def _ignored(order: Order, saga: Saga) -> None:
    # A duplicate, or a reply overtaken by a cancellation: nothing left to do.
    log.info("saga.reply_ignored", order_id=order.id, order_status=order.status.value, step=saga.step.value)
