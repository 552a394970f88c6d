"""idempotency keys move to the chassis store: the first answer is stored, not re-derived

The order-only table `idempotency_keys` (user_id, key, request_hash, order_id, created_at) becomes
the chassis table of the same name (scope, key, operation, fingerprint, state, token, owner,
status_code, body, created_at). Each old key is carried over as a finished `POST /orders` with
scope = its user, fingerprint = its request hash (the same sha256 of the canonical body) and, as
its answer, 202 and the order as its first event (OrderPlaced) left it: what the service used to
replay for it. The answer is rendered here, in the API's shape of today, so this revision keeps
giving the same bytes whatever the API becomes later. Keys older than 24 h are carried over too:
they count as new and the purge deletes them.

Revision ID: 0004
"""

import json
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pydantic_core
import sqlalchemy as sa
from alembic import op

from msashop.chassis.event_store import event_store
from msashop.chassis.idempotency import create_idempotency_table

revision = "0004"
down_revision = "0003"

CENT = Decimal("0.01")
OLD = "idempotency_keys_0003"


def _money(value: str) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def first_answer(order_id: str, placed: dict[str, Any]) -> bytes:
    """The 202 body of POST /orders for the order OrderPlaced describes (api.OrderOut)."""
    lines = [
        (line["product_id"], line["name"], int(line["quantity"]), _money(line["unit_price"]))
        for line in placed["lines"]
    ]
    line_totals = [(price * quantity).quantize(CENT, ROUND_HALF_UP) for _, _, quantity, price in lines]
    shipping = _money(placed["shipping_cost"])
    total = (sum(line_totals, Decimal("0")).quantize(CENT, ROUND_HALF_UP) + shipping).quantize(
        CENT, ROUND_HALF_UP
    )
    address = placed["shipping_address"]
    at = datetime.fromisoformat(placed["at"])
    body = {
        "id": order_id,
        "user_id": placed["user_id"],
        "status": "PENDING",
        "status_reason": None,
        "items": [
            {
                "product_id": product_id,
                "name": name,
                "quantity": quantity,
                "unit_price": float(price),
                "line_total": float(line_total),
            }
            for (product_id, name, quantity, price), line_total in zip(lines, line_totals, strict=True)
        ],
        "shipping_cost": float(shipping),
        "total": float(total),
        "currency": placed["currency"],
        "shipping_address": {
            field: address.get(field)
            for field in ("name", "line1", "line2", "city", "postal_code", "country")
        },
        "created_at": at,
        "updated_at": at,
    }
    return pydantic_core.to_json(body)  # pydantic's JSON, as the API renders its models


def upgrade() -> None:
    op.rename_table("idempotency_keys", OLD)
    create_idempotency_table(op)
    bind = op.get_bind()
    meta = sa.MetaData()
    old = sa.Table(OLD, meta, autoload_with=bind)
    new = sa.Table("idempotency_keys", meta, autoload_with=bind)
    for row in bind.execute(sa.select(old)).all():
        placed = bind.execute(
            sa.select(event_store.c.data).where(
                event_store.c.aggregate_id == row.order_id, event_store.c.version == 1
            )
        ).scalar()
        if placed is None:  # cannot happen (0003 wrote every order's history); nothing to replay
            continue
        bind.execute(
            sa.insert(new).values(
                scope=row.user_id,
                key=row.key,
                operation="POST /orders",
                fingerprint=row.request_hash,
                state="done",
                token=uuid.uuid4().hex,
                owner="migration 0004",
                status_code=202,
                body=first_answer(row.order_id, placed).decode(),
                created_at=row.created_at,
            )
        )
    op.drop_table(OLD)


def downgrade() -> None:
    op.rename_table("idempotency_keys", OLD)
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    bind = op.get_bind()
    meta = sa.MetaData()
    new = sa.Table(OLD, meta, autoload_with=bind)
    old = sa.Table("idempotency_keys", meta, autoload_with=bind)
    # Only what the old table can say: orders placed under a key. Stored errors and claims in
    # flight have no order to point at.
    done = sa.select(new).where(
        new.c.operation == "POST /orders", new.c.state == "done", new.c.status_code == 202
    )
    for row in bind.execute(done).all():
        bind.execute(
            sa.insert(old).values(
                user_id=row.scope,
                key=row.key,
                request_hash=row.fingerprint,
                order_id=json.loads(row.body)["id"],
                created_at=row.created_at,
            )
        )
    op.drop_table(OLD)
