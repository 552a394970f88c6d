"""The projector: feeds the read models (order detail, orders by user, analytics) from the store.

Live, the events a transaction appends are projected in that same transaction, so a client
reads its own writes and a crash can never leave a view behind its events. Handling is
idempotent: each `orders` row keeps the version it reflects and an event at or below it is
skipped, so catching up from a checkpoint that is behind repeats nothing. The checkpoint
(`projection_checkpoints`, name "orders") records how far the store has been read back; the
service catches up from it at start and every half minute (the live path leaves it alone, see
`apply`), and `rebuild` recomputes every view from the first event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.event_store import Checkpoints, EventStore, StoredEvent
from msashop.services.order.db import (
    OrderViews,
    order_lines,
    order_stats_by_day,
    order_stats_by_status,
    orders,
)
from msashop.services.order.read_model import Analytics, AnalyticsDelta, OrderView, analytics_delta, project

log = structlog.get_logger()
NAME = "orders"
BATCH = 500


@dataclass(frozen=True)
class RebuildReport:
    events: int
    orders: int
    position: int


class OrdersProjection:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.views = OrderViews(session)
        self.checkpoints = Checkpoints(session)

    async def apply(self, events: Sequence[StoredEvent], *, advance: bool = False) -> int:
        """Project `events` (any aggregates, position order); returns how many changed a view.

        The live path does not `advance` the checkpoint: one row every order write would update
        is one lock they would all queue for (PostgreSQL). `catch_up` advances it instead.
        """
        applied = 0
        current: dict[str, OrderView | None] = {}
        for event in events:
            if event.aggregate_id not in current:
                current[event.aggregate_id] = await self.views.get(event.aggregate_id)
            before = current[event.aggregate_id]
            if before is not None and event.version <= before.version:
                continue  # already projected: a repeat from a catch-up
            after = project(before, event.aggregate_id, event.version, event.type, event.data)
            await self._write(before, after)
            await self._add_stats(analytics_delta(before, after))
            current[event.aggregate_id] = after
            applied += 1
        if events and advance:
            await self.checkpoints.advance(NAME, max(e.position for e in events))
        return applied

    async def catch_up(self) -> int:
        """Apply whatever the store holds past the checkpoint (nothing, unless views were lost)."""
        store = EventStore(self.session)
        applied = 0
        while batch := await store.read_all(after=await self.checkpoints.get(NAME), limit=BATCH):
            applied += await self.apply(batch, advance=True)
        if applied:
            log.warning("projection.caught_up", projection=NAME, events=applied)
        return applied

    async def rebuild(self) -> RebuildReport:
        """Every view recomputed from the first event, in the caller's transaction.

        Rows are rewritten in place rather than dropped, so the sagas and idempotency keys that
        reference an order keep their foreign keys; analytics are recomputed from scratch.
        """
        store = EventStore(self.session)
        views: dict[str, OrderView] = {}
        position = count = 0
        while batch := await store.read_all(after=position, limit=BATCH):
            for event in batch:
                views[event.aggregate_id] = project(
                    views.get(event.aggregate_id), event.aggregate_id, event.version, event.type, event.data
                )
            position = batch[-1].position
            count += len(batch)
        existing = {v.id for v in await self.views.all()}
        for view in views.values():
            await self._write(view if view.id in existing else None, view, replace_lines=True)
        orphans = existing - set(views)
        if orphans:  # a row no event explains: not ours to keep
            await self.session.execute(sa.delete(order_lines).where(order_lines.c.order_id.in_(orphans)))
            await self.session.execute(sa.delete(orders).where(orders.c.id.in_(orphans)))
        await self.session.execute(sa.delete(order_stats_by_status))
        await self.session.execute(sa.delete(order_stats_by_day))
        stats = Analytics.of(views.values())
        for status, (n, revenue) in stats.by_status.items():
            await self.session.execute(
                sa.insert(order_stats_by_status).values(status=status, count=n, revenue=revenue)
            )
        for day, (n, revenue) in stats.by_day.items():
            await self.session.execute(
                sa.insert(order_stats_by_day).values(day=day, count=n, revenue=revenue)
            )
        await self.checkpoints.reset(NAME)
        if position:
            await self.checkpoints.advance(NAME, position)
        log.info("projection.rebuilt", projection=NAME, events=count, orders=len(views))
        return RebuildReport(events=count, orders=len(views), position=position)

    async def _write(
        self, before: OrderView | None, after: OrderView, *, replace_lines: bool = False
    ) -> None:
        values = {
            "user_id": after.user_id,
            "status": after.status,
            "status_reason": after.status_reason,
            "total": after.total,
            "shipping_cost": after.shipping_cost,
            "currency": after.currency,
            "shipping_address": after.shipping_address,
            "created_at": after.created_at,
            "updated_at": after.updated_at,
            "version": after.version,
        }
        if before is None:
            await self.session.execute(sa.insert(orders).values(id=after.id, **values))
        else:
            await self.session.execute(sa.update(orders).where(orders.c.id == after.id).values(**values))
        if before is None or replace_lines:
            await self.session.execute(sa.delete(order_lines).where(order_lines.c.order_id == after.id))
            await self.session.execute(
                sa.insert(order_lines),
                [
                    {
                        "order_id": after.id,
                        "position": position,
                        "product_id": line.product_id,
                        "name": line.name,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                    }
                    for position, line in enumerate(after.lines)
                ],
            )

    async def _add_stats(self, delta: AnalyticsDelta) -> None:
        for status, count, revenue in delta.by_status:
            await self._upsert_add(order_stats_by_status, "status", status, count, revenue)
        await self._upsert_add(order_stats_by_day, "day", delta.day, delta.day_count, delta.day_revenue)

    async def _upsert_add(self, table: sa.Table, key: str, value: str, count: int, revenue: Decimal) -> None:
        """Add to a counter row, creating it if needed, in one statement (no read-modify-write)."""
        dialect = self.session.get_bind().dialect.name
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        statement = insert.values({key: value, "count": count, "revenue": revenue}).on_conflict_do_update(
            index_elements=[key],
            set_={
                "count": table.c.count + insert.excluded.count,
                "revenue": table.c.revenue + insert.excluded.revenue,
            },
        )
        await self.session.execute(statement)
