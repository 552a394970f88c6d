"""event store: orders become event streams; orders/order_lines become a read model; analytics tables

Orders stored before this revision get their history written as events (OrderPlaced, then
OrderConfirmed or OrderCancelled as their row says), so the store holds every order and a
rebuild of the views gives back what was there.

Revision ID: 0003
"""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from msashop.chassis.event_store import create_event_store_tables, event_store

revision = "0003"
down_revision = "0002"

CENT = Decimal("0.01")


def upgrade() -> None:
    create_event_store_tables(op)
    op.add_column("orders", sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("sagas") as batch:  # COMPENSATION_FAILED is 19 characters
        batch.alter_column("status", type_=sa.String(24), existing_type=sa.String(16))
    op.create_table(
        "order_stats_by_status",
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("revenue", sa.Numeric(14, 2), nullable=False),
    )
    op.create_table(
        "order_stats_by_day",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("revenue", sa.Numeric(14, 2), nullable=False),
    )
    _orders_to_events()


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _orders_to_events() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    orders = sa.Table("orders", meta, autoload_with=bind)
    lines = sa.Table("order_lines", meta, autoload_with=bind)
    sagas = sa.Table("sagas", meta, autoload_with=bind)
    payment_ids = dict(bind.execute(sa.select(sagas.c.order_id, sagas.c.payment_id)).all())
    by_status: dict[str, list[Any]] = {}
    by_day: dict[str, list[Any]] = {}
    now = datetime.now(UTC)
    for row in bind.execute(sa.select(orders)).all():
        order_lines = bind.execute(
            sa.select(lines).where(lines.c.order_id == row.id).order_by(lines.c.position)
        ).all()
        created = _iso(row.created_at)
        history = [
            (
                "OrderPlaced",
                {
                    "user_id": row.user_id,
                    "lines": [
                        {
                            "product_id": line.product_id,
                            "name": line.name,
                            "quantity": line.quantity,
                            "unit_price": str(Decimal(str(line.unit_price)).quantize(CENT, ROUND_HALF_UP)),
                        }
                        for line in order_lines
                    ],
                    "currency": row.currency,
                    "shipping_address": row.shipping_address,
                    "shipping_cost": str(Decimal(str(row.shipping_cost)).quantize(CENT, ROUND_HALF_UP)),
                    "at": created,
                },
            )
        ]
        if row.status == "CONFIRMED":
            history.append(
                ("OrderConfirmed", {"payment_id": payment_ids.get(row.id) or "", "at": _iso(row.updated_at)})
            )
        elif row.status == "CANCELLED":
            history.append(
                ("OrderCancelled", {"reason": row.status_reason or "cancelled", "at": _iso(row.updated_at)})
            )
        for version, (type_, data) in enumerate(history, start=1):
            bind.execute(
                sa.insert(event_store).values(
                    aggregate_id=row.id,
                    version=version,
                    type=type_,
                    data=data,
                    metadata={"migrated_from": "orders table (revision 0003)"},
                    recorded_at=now,
                )
            )
        bind.execute(sa.update(orders).where(orders.c.id == row.id).values(version=len(history)))
        total = Decimal(str(row.total))
        status = by_status.setdefault(row.status, [0, Decimal("0")])
        status[0] += 1
        status[1] += total
        day = by_day.setdefault(created[:10], [0, Decimal("0")])
        day[0] += 1
        day[1] += total if row.status == "CONFIRMED" else Decimal("0")
    stats_status = sa.Table("order_stats_by_status", meta, autoload_with=bind)
    stats_day = sa.Table("order_stats_by_day", meta, autoload_with=bind)
    for key, (count, revenue) in by_status.items():
        bind.execute(sa.insert(stats_status).values(status=key, count=count, revenue=revenue))
    for key, (count, revenue) in by_day.items():
        bind.execute(sa.insert(stats_day).values(day=key, count=count, revenue=revenue))


def downgrade() -> None:
    op.drop_table("order_stats_by_day")
    op.drop_table("order_stats_by_status")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("version")
    op.drop_table("projection_checkpoints")
    op.drop_table("event_store")
