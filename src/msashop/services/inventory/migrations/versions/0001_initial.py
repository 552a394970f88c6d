"""stock, reservations, outbox, inbox

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from msashop.chassis.messaging_tables import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "stock",
        sa.Column("product_id", sa.String(64), primary_key=True),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('RESERVED', 'COMMITTED', 'RELEASED')", name="ck_reservation_status"),
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("stock")
