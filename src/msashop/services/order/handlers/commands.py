"""What the saga sends: its commands and the order's integration events, queued in the outbox.

Every command carries the idempotency key `<saga id>:<step>` and an envelope id derived from it,
so queueing one twice in a retried transaction is a no-op. A resend after a timeout (attempt 2,
3, ...) gets a new envelope id, so the bus delivers it again, but keeps the key, so the receiver
does the work once and only answers again.
"""

from __future__ import annotations

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import (
    CommitStock,
    OrderLine,
    Payload,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    SendNotification,
)
from msashop.services.order.domain import Order, Saga, Step

SOURCE = "order"
# The idempotency-key suffix of each step whose command can be sent again.
STEP_KEYS = {
    Step.RESERVE_INVENTORY: "reserve",
    Step.PROCESS_PAYMENT: "charge",
    Step.COMMIT_INVENTORY: "commit",
    Step.SEND_NOTIFICATION: "notify",
    Step.REFUND_PAYMENT: "refund",
    Step.RELEASE_INVENTORY: "release",
}


def queue(uow: UnitOfWork, payload: Payload, order_id: str, event_id: str, cause: Envelope | None) -> None:
    uow.publish(wrap(payload, source=SOURCE, key=order_id, cause=cause, event_id=event_id))


def command_key(saga: Saga, step: Step, *why: str, attempt: int = 1) -> tuple[str, str]:
    """(envelope id, idempotency key) of one saga command."""
    key = ":".join((saga.id, STEP_KEYS[step], *why))
    if attempt == 1:
        return deterministic_id(saga.id, STEP_KEYS[step], *why), key
    return deterministic_id(saga.id, STEP_KEYS[step], *why, "attempt", str(attempt)), key


def lines_of(order: Order) -> list[OrderLine]:
    return [
        OrderLine(product_id=line.product_id, quantity=line.quantity, unit_price=line.unit_price)
        for line in order.lines
    ]


def send(
    uow: UnitOfWork,
    order: Order,
    saga: Saga,
    step: Step,
    cause: Envelope | None,
    *why: str,
    attempt: int = 1,
) -> None:
    """Queue the command of `step` (not the charge: its token is only at hand once, see saga.py)."""
    event_id, key = command_key(saga, step, *why, attempt=attempt)
    payload: Payload
    match step:
        case Step.RESERVE_INVENTORY:
            payload = ReserveStock(order_id=order.id, lines=lines_of(order), idempotency_key=key)
        case Step.COMMIT_INVENTORY:
            payload = CommitStock(order_id=order.id, idempotency_key=key)
        case Step.RELEASE_INVENTORY:
            payload = ReleaseStock(order_id=order.id, idempotency_key=key)
        case Step.REFUND_PAYMENT:
            payload = RefundPayment(order_id=order.id, idempotency_key=key)
        case Step.SEND_NOTIFICATION:
            payload = SendNotification(
                order_id=order.id,
                user_id=order.user_id,
                type="order_confirmed",
                total=order.total,
                currency=order.currency,
                idempotency_key=key,
            )
        case _:
            raise ValueError(f"{step} has no command that can be sent again")
    queue(uow, payload, order.id, event_id, cause)
