"""Publishes what transactions wrote to the outbox, in commit order, until the broker has it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog

from msashop.chassis import bus_tracing
from msashop.chassis.bus.port import EventBus
from msashop.chassis.db import Database
from msashop.chassis.messaging_tables import outbox
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()


class OutboxRelay:
    def __init__(self, db: Database, bus: EventBus, *, batch: int = 100, idle_poll: float = 1.0) -> None:
        self.db = db
        self.bus = bus
        self.batch = batch
        self.idle_poll = idle_poll
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One batch at a time: two overlapping calls would both read the same unpublished rows.
        self._publishing = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            # Cleared before reading, so a commit that lands while we publish wakes the next round.
            self.wake.clear()
            try:
                sent = await self.publish_pending()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or database away: nothing is lost, retry
                failures += 1
                log.warning("outbox.publish_failed", error=str(exc), attempt=failures)
                await asyncio.sleep(min(10.0, 0.2 * 2**failures))
                continue
            if sent < self.batch:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands
                # as the event is set, and stop() would then wait forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_poll):
                        await self.wake.wait()

    async def publish_pending(self) -> int:
        """Publish one batch in commit order; each row is marked once the broker acknowledged it."""
        async with self._publishing:
            return await self._publish_batch()

    async def _publish_batch(self) -> int:
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    sa.select(outbox.c.seq, outbox.c.envelope)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch)
                )
            ).all()
        published: list[int] = []
        try:
            for seq, raw in rows:
                # A PRODUCER span under the context the event was queued in (bus_tracing).
                with bus_tracing.publishing(Envelope.model_validate_json(raw)) as envelope:
                    await self.bus.publish(envelope)
                published.append(seq)
        finally:
            if published:
                await self._mark_published(published)
        return len(rows)

    async def _mark_published(self, seqs: list[int]) -> None:
        async with self.db.writing(), self.db.session() as session, session.begin():
            await session.execute(
                sa.update(outbox).where(outbox.c.seq.in_(seqs)).values(published_at=datetime.now(UTC))
            )

    async def pending(self) -> int:
        async with self.db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def lag_seconds(self) -> float:
        """Age of the oldest event not yet published: 0 when the outbox is drained."""
        async with self.db.read() as session:
            oldest = await session.scalar(
                sa.select(sa.func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            )
        if oldest is None:
            return 0.0
        if oldest.tzinfo is None:  # SQLite hands back naive datetimes (stored as UTC)
            oldest = oldest.replace(tzinfo=UTC)
        age: float = (datetime.now(UTC) - oldest).total_seconds()
        return max(0.0, age)
