"""The order tables: the event store (the truth), the read models fed from it, sagas.

`orders` + `order_lines` are the order-detail and orders-by-user read model and the
`order_stats_*` tables the analytics one (projections.py writes them; nothing else does).
`OrderRepository` is the write side: it loads an order by folding its events and saves one by
appending the events it recorded. `OrderViews` is the read side the API queries.
Idempotency keys are the chassis store's (`msashop.chassis.idempotency`, migration 0004).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.event_store import EventStore, NewEvent, StoredEvent
from msashop.services.order.domain import (
    Order,
    OrderStatus,
    Saga,
    SagaStatus,
    SagaStep,
    Step,
    StepStatus,
    event_from,
    money,
)
from msashop.services.order.read_model import LineView, OrderView

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.String(64), nullable=True),
    sa.Column("total", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("shipping_address", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Part of `total`; 0 for orders placed before shipping was priced (migration 0002).
    sa.Column("shipping_cost", sa.Numeric(12, 2), nullable=False, server_default="0"),
    # The last event of the order this row reflects: an event at or below it is not applied again.
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
)

order_stats_by_status = sa.Table(
    "order_stats_by_status",
    metadata,
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("revenue", sa.Numeric(14, 2), nullable=False),
)

order_stats_by_day = sa.Table(
    "order_stats_by_day",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("revenue", sa.Numeric(14, 2), nullable=False),
)

sagas = sa.Table(
    "sagas",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), nullable=False, unique=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("payment_token", sa.String(200), nullable=True),
    sa.Column("payment_id", sa.String(64), nullable=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- write side ------------------------------------------------------------------------------
class OrderRepository:
    """Orders as their event streams. `save` appends; the caller projects what was appended."""

    def __init__(self, session: AsyncSession) -> None:
        self.store = EventStore(session)

    async def get(self, order_id: str) -> Order | None:
        """The order folded from its events."""
        stored = await self.store.load(order_id)
        if not stored:
            return None
        return Order.from_history(order_id, [event_from(e.type, e.data) for e in stored])

    async def save(self, order: Order, *, metadata: dict[str, Any] | None = None) -> list[StoredEvent]:
        """Append the events the order recorded since it was loaded (ConcurrencyConflict if stale)."""
        if not order.pending_events:
            return []
        expected = order.version - len(order.pending_events)
        new = [NewEvent(e.type, e.to_data(), dict(metadata or {})) for e in order.pending_events]
        stored = await self.store.append(order.id, expected, new)
        order.pending_events.clear()
        return stored


# --- read side -------------------------------------------------------------------------------
class OrderViews:
    """The read models, as the API asks for them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: str) -> OrderView | None:
        row = (await self.session.execute(sa.select(orders).where(orders.c.id == order_id))).first()
        return (await self._with_lines([row]))[0] if row else None

    async def list_for_user(
        self, user_id: str, *, status: OrderStatus | None, page: int, page_size: int
    ) -> tuple[list[OrderView], int]:
        where = [orders.c.user_id == user_id]
        if status is not None:
            where.append(orders.c.status == status.value)
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(orders).where(*where))
        rows = (
            await self.session.execute(
                sa.select(orders)
                .where(*where)
                .order_by(orders.c.created_at.desc(), orders.c.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        ).all()
        return await self._with_lines(rows), int(total or 0)

    async def all(self) -> list[OrderView]:
        rows = (await self.session.execute(sa.select(orders).order_by(orders.c.id))).all()
        return await self._with_lines(rows)

    async def totals_by_status(self) -> dict[str, tuple[int, Decimal]]:
        t = order_stats_by_status
        rows = await self.session.execute(sa.select(t.c.status, t.c["count"], t.c.revenue))
        return {status: (int(n), money(revenue)) for status, n, revenue in rows if n}

    async def totals_by_day(self) -> list[tuple[str, int, Decimal]]:
        t = order_stats_by_day
        rows = await self.session.execute(sa.select(t.c.day, t.c["count"], t.c.revenue).order_by(t.c.day))
        return [(day, int(n), money(revenue)) for day, n, revenue in rows if n]

    async def _with_lines(self, rows: Sequence[Any]) -> list[OrderView]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        line_rows = await self.session.execute(
            sa.select(order_lines)
            .where(order_lines.c.order_id.in_(ids))
            .order_by(order_lines.c.order_id, order_lines.c.position)
        )
        lines: dict[str, list[LineView]] = {i: [] for i in ids}
        for r in line_rows:
            lines[r.order_id].append(LineView(r.product_id, r.name, r.quantity, money(r.unit_price)))
        return [view_of(row, lines[row.id]) for row in rows]


def view_of(row: Any, lines: list[LineView]) -> OrderView:
    return OrderView(
        id=row.id,
        user_id=row.user_id,
        status=row.status,
        status_reason=row.status_reason,
        lines=tuple(lines),
        shipping_cost=money(row.shipping_cost),
        currency=row.currency,
        shipping_address=dict(row.shipping_address),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        version=int(row.version),
    )


# --- sagas -----------------------------------------------------------------------------------
class SagaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, saga: Saga) -> None:
        await self.session.execute(sa.insert(sagas).values(id=saga.id, **_saga_columns(saga)))

    async def save(self, saga: Saga) -> None:
        await self.session.execute(
            sa.update(sagas).where(sagas.c.id == saga.id).values(**_saga_columns(saga))
        )

    async def for_order(self, order_id: str, *, for_update: bool = False) -> Saga | None:
        """`for_update` locks the row (PostgreSQL) so a reply and a cancel never interleave."""
        query = sa.select(sagas).where(sagas.c.order_id == order_id)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        return _to_saga(row) if row else None

    async def overdue_order_ids(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Orders whose saga waits past its deadline (RUNNING or COMPENSATING)."""
        rows = await self.session.execute(
            sa.select(sagas.c.order_id)
            .where(
                sagas.c.status.in_([SagaStatus.RUNNING.value, SagaStatus.COMPENSATING.value]),
                sagas.c.deadline_at < now,
            )
            .order_by(sagas.c.deadline_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(sa.select(sagas.c.status, sa.func.count()).group_by(sagas.c.status))
        return {status: int(count) for status, count in rows}


def _saga_columns(saga: Saga) -> dict[str, Any]:
    return {
        "order_id": saga.order_id,
        "status": saga.status.value,
        "step": saga.step.value,
        "payment_token": saga.payment_token,
        "payment_id": saga.payment_id,
        "steps": [
            {
                "name": s.name.value,
                "status": s.status.value,
                "started_at": s.started_at.isoformat(),
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                "error": s.error,
            }
            for s in saga.steps
        ],
        "deadline_at": saga.deadline_at,
        "updated_at": saga.updated_at,
    }


def _to_saga(row: Any) -> Saga:
    steps = [
        SagaStep(
            name=Step(s["name"]),
            status=StepStatus(s["status"]),
            started_at=datetime.fromisoformat(s["started_at"]),
            finished_at=datetime.fromisoformat(s["finished_at"]) if s["finished_at"] else None,
            error=s["error"],
        )
        for s in row.steps
    ]
    return Saga(
        id=row.id,
        order_id=row.order_id,
        deadline_at=utc(row.deadline_at),
        updated_at=utc(row.updated_at),
        payment_token=row.payment_token,
        status=SagaStatus(row.status),
        step=Step(row.step),
        payment_id=row.payment_id,
        steps=steps,
    )
