"""The order service's metrics: the guide's business metrics and the saga's state.

`orders_created_total{status,payment_method}` counts each placed order once, with the status it
was created in (PENDING: the saga decides later) as the guide's `recordOrder(order)` does, so the
guide's `rate(orders_created_total[5m])` is the order rate. How sagas end is `saga_status`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.order.db import SagaRepository, orders, sagas, utc
from msashop.services.order.domain import SagaStatus

orders_created_total = Counter(
    "orders_created_total",
    "Orders placed, by status at creation and payment method (idempotent replays not counted)",
    ["status", "payment_method"],
)
order_value_dollars = Histogram(
    "order_value_dollars", "Totals of placed orders", buckets=(10, 50, 100, 500, 1000, 5000)
)
sagas_by_status = Gauge("saga_status", "Sagas by status", ["status"])
# For "saga stuck": a checkout saga takes seconds; one unfinished for many minutes needs a look.
saga_oldest_age_seconds = Gauge(
    "saga_oldest_age_seconds",
    "Age of the oldest saga still RUNNING or COMPENSATING, since its order was placed (0: none)",
    ["status"],
)
UNFINISHED = (SagaStatus.RUNNING, SagaStatus.COMPENSATING)


def payment_method(token: str) -> str:
    """The kind of payment a token stands for (a bounded label, never the token itself)."""
    return "card" if token.startswith("tok_") else "other"


def record_order(status: str, token: str, total: float) -> None:
    orders_created_total.labels(status, payment_method(token)).inc()
    order_value_dollars.observe(total)


async def report_sagas(session: AsyncSession, now: datetime) -> None:
    """Refresh `saga_status` and `saga_oldest_age_seconds` from the saga table."""
    found = await SagaRepository(session).count_by_status()
    for status in SagaStatus:
        sagas_by_status.labels(status.value).set(found.get(status.value, 0))
    oldest = await session.execute(
        sa.select(sagas.c.status, sa.func.min(orders.c.created_at, type_=orders.c.created_at.type))
        .join(orders, orders.c.id == sagas.c.order_id)
        .where(sagas.c.status.in_([s.value for s in UNFINISHED]))
        .group_by(sagas.c.status)
    )
    placed = {str(status): utc(at) for status, at in oldest if at is not None}
    for status in UNFINISHED:
        at = placed.get(status.value)
        saga_oldest_age_seconds.labels(status.value).set((now - at).total_seconds() if at else 0)
