"""Message handlers in two phases: slow I/O first, outside any transaction, then the effects.

A plain handler (`Service.on_message(subject, handler)`) runs inside the unit of work the chassis
opens, and on SQLite that transaction holds the service's single write lock from its first
statement (the inbox claim, `BEGIN IMMEDIATE`). A handler that calls out (a payment provider,
with retries and backoff sleeps) would keep every other message and request of the service from
writing for as long as the call takes. A `PreparedHandler` splits the work:

    prepare(envelope, read) -> T       no transaction held: short reads through `read()` (takes
                                       no write lock), then the slow call
    apply(envelope, uow, prepared: T)  in the unit of work, after the inbox claim: look again at
                                       what is recorded now, write, publish

`apply` must not assume the state `prepare` saw is still current: a concurrent delivery (another
envelope for the same aggregate) may have recorded its outcome in between, so it re-reads under
the lock and answers from that. `prepare` must be safe to repeat: a crash (or a failed apply)
between prepare and commit leaves no trace, and the redelivery runs prepare again. Calls out
therefore carry an idempotency key, so the second call is answered from the first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.db import Database
from msashop.chassis.messaging_tables import inbox
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope

T = TypeVar("T")
# `Database.read`: a session for one short read, outside the write lock.
Reader = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class PreparedHandler(Generic[T]):
    """`prepare` runs before the unit of work (no lock held); `apply` inside it, given its result."""

    prepare: Callable[[Envelope, Reader], Awaitable[T]]
    apply: Callable[[Envelope, UnitOfWork, T], Awaitable[None]]


async def already_handled(db: Database, consumer: str, envelope: Envelope) -> bool:
    """Whether `consumer` has committed this event: a read that takes no write lock.

    Only a shortcut for redeliveries (so they skip `prepare`); the claim in the unit of work
    still decides, since a concurrent delivery may commit after this read.
    """
    async with db.read() as session:
        found = await session.scalar(
            sa.select(sa.literal(1)).where(inbox.c.consumer == consumer, inbox.c.event_id == envelope.id)
        )
    return found is not None
