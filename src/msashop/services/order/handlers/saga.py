"""The checkout saga's orchestrator: every reply moves the order and queues the next command.

    placed -> inventory.reserve -> reserved -> payment.charge -> captured -> inventory.commit
                                   reservation_failed           declined / failed
                                   -> CANCELLED                 -> CANCELLED, inventory.release

Each handler runs in the unit of work the chassis opened for the reply (inbox claim made, commit
after return), so the state change and the commands it causes land in one transaction. Every
command's envelope id is derived from the saga id and the step, so a handler that runs twice
queues nothing new; the checks on order status and on the saga's waiting step make replies
that arrive twice, late or out of order change nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import (
    ChargePayment,
    CommitStock,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    Payload,
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.order.db import OrderRepository, SagaRepository
from msashop.services.order.domain import Order, OrderStatus, Saga, Step

log = structlog.get_logger()
SOURCE = "order"


def _now() -> datetime:
    return datetime.now(UTC)


def _queue(uow: UnitOfWork, payload: Payload, order_id: str, event_id: str, cause: Envelope | None) -> None:
    uow.publish(wrap(payload, source=SOURCE, key=order_id, cause=cause, event_id=event_id))


def _command_key(saga: Saga, *parts: str) -> tuple[str, str]:
    """(envelope id, idempotency key) of one saga command, both derived from saga and step."""
    return deterministic_id(saga.id, *parts), ":".join((saga.id, *parts))


# --- what the saga queues --------------------------------------------------------------------
def start(uow: UnitOfWork, order: Order, saga: Saga) -> None:
    """Announce the order and ask inventory to reserve its lines."""
    lines = [
        OrderLine(product_id=line.product_id, quantity=line.quantity, unit_price=line.unit_price)
        for line in order.lines
    ]
    created = OrderCreated(
        order_id=order.id,
        user_id=order.user_id,
        lines=lines,
        total=order.total,
        currency=order.currency,
        shipping_cost=order.shipping_cost,
    )
    _queue(uow, created, order.id, deterministic_id(order.id, "created"), None)
    event_id, key = _command_key(saga, "reserve")
    _queue(uow, ReserveStock(order_id=order.id, lines=lines, idempotency_key=key), order.id, event_id, None)


def _release(uow: UnitOfWork, saga: Saga, cause: Envelope | None, *why: str) -> None:
    event_id, key = _command_key(saga, "release", *why)
    _queue(uow, ReleaseStock(order_id=saga.order_id, idempotency_key=key), saga.order_id, event_id, cause)


def _refund(uow: UnitOfWork, saga: Saga, cause: Envelope | None, *why: str) -> None:
    event_id, key = _command_key(saga, "refund", *why)
    _queue(uow, RefundPayment(order_id=saga.order_id, idempotency_key=key), saga.order_id, event_id, cause)


async def cancel(
    uow: UnitOfWork,
    order: Order,
    saga: Saga,
    *,
    reason: str,
    now: datetime,
    refund: bool,
    release: bool = True,
    cause: Envelope | None = None,
) -> None:
    """Cancel the order and undo what the saga did so far, newest step first (refund, release)."""
    order.cancel(reason, now)
    compensations: list[Step] = []
    if refund:
        _refund(uow, saga, cause)
        compensations.append(Step.REFUND_PAYMENT)
    if release:
        _release(uow, saga, cause)
        compensations.append(Step.RELEASE_INVENTORY)
    saga.compensate(compensations, now)
    cancelled = OrderCancelled(order_id=order.id, user_id=order.user_id, reason=reason)
    _queue(uow, cancelled, order.id, deterministic_id(order.id, "cancelled"), cause)
    await OrderRepository(uow.session).save_status(order)
    await SagaRepository(uow.session).save(saga)
    log.info(
        "order.cancelled", order_id=order.id, reason=reason, compensations=[s.value for s in compensations]
    )


# --- replies ---------------------------------------------------------------------------------
async def _load(uow: UnitOfWork, order_id: str) -> tuple[Order, Saga] | None:
    order = await OrderRepository(uow.session).get(order_id, for_update=True)
    saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
    if order is None or saga is None:
        log.warning("saga.reply_for_unknown_order", order_id=order_id)
        return None
    return order, saga


def _ignored(order: Order, saga: Saga) -> None:
    # A duplicate, or a reply overtaken by a cancellation: nothing left to do.
    log.info("saga.reply_ignored", order_id=order.id, order_status=order.status.value, step=saga.step.value)


async def on_stock_reserved(envelope: Envelope, uow: UnitOfWork) -> None:
    reply = StockReserved.model_validate(envelope.data)
    if (loaded := await _load(uow, reply.order_id)) is None:
        return
    order, saga = loaded
    now = _now()
    reserved_now = saga.finish(Step.RESERVE_INVENTORY, now)
    if reserved_now and order.status is OrderStatus.PENDING and saga.payment_token:
        saga.begin(Step.PROCESS_PAYMENT, now)
        event_id, key = _command_key(saga, "charge")
        charge = ChargePayment(
            order_id=order.id,
            user_id=order.user_id,
            amount=order.total,
            currency=order.currency,
            token=saga.payment_token,
            idempotency_key=key,
        )
        _queue(uow, charge, order.id, event_id, envelope)
        saga.payment_token = None  # it travels in the queued command; we need it no longer
    elif reserved_now and order.status is OrderStatus.CANCELLED:
        # Cancelled while the reservation was on its way: give the stock back.
        _release(uow, saga, envelope, "late-reserve")
        saga.compensate([Step.RELEASE_INVENTORY], now)
    else:
        _ignored(order, saga)
    await SagaRepository(uow.session).save(saga)


async def on_stock_reservation_failed(envelope: Envelope, uow: UnitOfWork) -> None:
    reply = StockReservationFailed.model_validate(envelope.data)
    if (loaded := await _load(uow, reply.order_id)) is None:
        return
    order, saga = loaded
    now = _now()
    if saga.finish(Step.RESERVE_INVENTORY, now, error=reply.reason) and order.status is OrderStatus.PENDING:
        # Nothing was reserved and nothing charged: no compensation to queue.
        await cancel(
            uow, order, saga, reason=reply.reason, now=now, refund=False, release=False, cause=envelope
        )
        return
    _ignored(order, saga)
    await SagaRepository(uow.session).save(saga)


async def on_payment_captured(envelope: Envelope, uow: UnitOfWork) -> None:
    reply = PaymentCaptured.model_validate(envelope.data)
    if (loaded := await _load(uow, reply.order_id)) is None:
        return
    order, saga = loaded
    now = _now()
    if not saga.finish(Step.PROCESS_PAYMENT, now):
        _ignored(order, saga)
        return
    saga.payment_id = reply.payment_id
    if order.status is OrderStatus.PENDING:
        saga.begin(Step.COMMIT_INVENTORY, now)
        event_id, key = _command_key(saga, "commit")
        _queue(uow, CommitStock(order_id=order.id, idempotency_key=key), order.id, event_id, envelope)
        order.confirm(now)
        saga.complete(now)
        confirmed = OrderConfirmed(
            order_id=order.id, user_id=order.user_id, total=order.total, currency=order.currency
        )
        _queue(uow, confirmed, order.id, deterministic_id(order.id, "confirmed"), envelope)
        await OrderRepository(uow.session).save_status(order)
        log.info("order.confirmed", order_id=order.id, total=str(order.total))
    else:
        # The money arrived after the order was cancelled (by the user or the timeout): undo it.
        _refund(uow, saga, envelope, "late-capture")
        _release(uow, saga, envelope, "late-capture")
        saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], now)
        log.warning("saga.late_capture_refunded", order_id=order.id, payment_id=reply.payment_id)
    await SagaRepository(uow.session).save(saga)


async def _on_payment_refused(envelope: Envelope, uow: UnitOfWork, order_id: str, reason: str) -> None:
    if (loaded := await _load(uow, order_id)) is None:
        return
    order, saga = loaded
    now = _now()
    if saga.finish(Step.PROCESS_PAYMENT, now, error=reason) and order.status is OrderStatus.PENDING:
        await cancel(uow, order, saga, reason=reason, now=now, refund=False, cause=envelope)
        return
    _ignored(order, saga)
    await SagaRepository(uow.session).save(saga)


async def on_payment_declined(envelope: Envelope, uow: UnitOfWork) -> None:
    reply = PaymentDeclined.model_validate(envelope.data)
    await _on_payment_refused(envelope, uow, reply.order_id, "payment_declined")


async def on_payment_failed(envelope: Envelope, uow: UnitOfWork) -> None:
    reply = PaymentFailed.model_validate(envelope.data)
    await _on_payment_refused(envelope, uow, reply.order_id, "payment_failed")


def closes(step: Step) -> Callable[[Envelope, UnitOfWork], Awaitable[None]]:
    """A handler for a reply that only confirms a step done (stock committed or released, refund)."""

    async def close_step(envelope: Envelope, uow: UnitOfWork) -> None:
        order_id = str(envelope.data.get("order_id", ""))
        if (loaded := await _load(uow, order_id)) is None:
            return
        _, saga = loaded
        if saga.finish(step, _now()):
            await SagaRepository(uow.session).save(saga)

    close_step.__name__ = f"close_{step.value.lower()}"
    return close_step


# --- the deadline ----------------------------------------------------------------------------
async def expire_overdue_sagas(new_uow: Callable[[], UnitOfWork], now: datetime | None = None) -> int:
    """Compensate sagas still RUNNING past their deadline: order CANCELLED `timeout`.

    One transaction per saga, so one bad row does not hold back the others. A charge may have
    been taken without its reply reaching us yet, so once one was requested a refund is queued.
    """
    now = now or _now()
    async with new_uow() as uow:
        order_ids = await SagaRepository(uow.session).overdue_order_ids(now)
    expired = 0
    for order_id in order_ids:
        async with new_uow() as uow:
            if (loaded := await _load(uow, order_id)) is None:
                continue
            order, saga = loaded
            if not saga.is_running or saga.deadline_at >= now or order.status is not OrderStatus.PENDING:
                continue  # a reply got there first
            await cancel(uow, order, saga, reason="timeout", now=now, refund=saga.charge_requested)
            await uow.commit()
            expired += 1
    if expired:
        log.warning("saga.expired", count=expired)
    return expired
