"""One transaction: the service's state changes, the events they cause, and the inbox claim.

async with UnitOfWork(db) as uow:
    ...                                   # change rows through uow.session
    uow.publish(wrap(StockReserved(...)))  # queued in the outbox, same transaction
    await uow.commit()
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis import bus_tracing
from msashop.chassis.db import Database
from msashop.chassis.messaging_tables import inbox, outbox
from msashop.contracts.envelope import Envelope


class UnitOfWork:
    def __init__(self, db: Database, on_commit: asyncio.Event | None = None) -> None:
        self._db = db
        self._on_commit = on_commit
        self.session: AsyncSession = db.session()
        self.published: list[Envelope] = []

    async def __aenter__(self) -> UnitOfWork:
        self._turn = self._db.writing()
        await self._turn.__aenter__()
        try:
            await self.session.begin()
        except BaseException:
            await self._turn.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.session.in_transaction():
            await self.session.rollback()
        try:
            await self.session.close()
        finally:
            await self._turn.__aexit__(None, None, None)

    def publish(self, envelope: Envelope) -> None:
        """Queue an event; it is written to the outbox with the rest of the transaction, carrying
        the current trace context (the relay and the consumers continue that trace)."""
        self.published.append(bus_tracing.stamp(envelope))

    async def claim(self, consumer: str, envelope: Envelope) -> bool:
        """Record that `consumer` handled this event. False if it already had: skip the effects."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    sa.insert(inbox).values(
                        consumer=consumer,
                        event_id=envelope.id,
                        subject=envelope.type,
                        processed_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def commit(self) -> None:
        if self.published:
            now = datetime.now(UTC)
            await self.session.execute(
                _insert_ignoring_duplicates(self.session),
                [
                    {
                        "event_id": e.id,
                        "subject": e.type,
                        "key": e.key,
                        "envelope": e.model_dump_json(),
                        "created_at": now,
                    }
                    for e in self.published
                ],
            )
        await self.session.commit()
        if self.published and self._on_commit is not None:
            self._on_commit.set()


def _insert_ignoring_duplicates(session: AsyncSession) -> sa.Insert:
    """An event id already in the outbox was queued by an earlier attempt: keep the first."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(outbox).on_conflict_do_nothing(index_elements=["event_id"])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(outbox).on_conflict_do_nothing(index_elements=["event_id"])
    return sa.insert(outbox)
