"""Loading and saving orders inside a unit of work: append the events, project them, same commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from msashop.chassis.event_store import ConcurrencyConflict
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.services.order.db import OrderRepository
from msashop.services.order.domain import Order
from msashop.services.order.projections import OrdersProjection

log = structlog.get_logger()
T = TypeVar("T")
CONFLICT_ATTEMPTS = 3


async def load(uow: UnitOfWork, order_id: str) -> Order | None:
    return await OrderRepository(uow.session).get(order_id)


async def save(uow: UnitOfWork, order: Order) -> None:
    """Append what the order recorded and update the read models with it, in the same transaction."""
    stored = await OrderRepository(uow.session).save(order)
    await OrdersProjection(uow.session).apply(stored)


async def retry_on_conflict(command: Callable[[], Awaitable[T]]) -> T:
    """Run a command (its own unit of work) again on fresh state when another writer got there first.

    Message handlers need no such loop: a conflict fails the delivery and the bus redelivers it.
    """
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return await command()
        except ConcurrencyConflict:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            log.info("order.concurrency_conflict_retried", attempt=attempt)
    raise AssertionError("unreachable")  # pragma: no cover


async def committed_retrying_on_conflict(
    new_uow: Callable[[], UnitOfWork], work: Callable[[UnitOfWork], Awaitable[T]]
) -> T:
    """`work` in its own unit of work, committed; run again on fresh state after a conflict."""

    async def attempt() -> T:
        async with new_uow() as uow:
            result = await work(uow)
            await uow.commit()
        return result

    return await retry_on_conflict(attempt)
