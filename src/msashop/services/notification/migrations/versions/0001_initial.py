"""users, notifications, outbox, inbox

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
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_via", sa.String(16), nullable=False),
        sa.CheckConstraint("delivered_via IN ('email', 'recorded')", name="ck_notification_delivered_via"),
    )
    not_null, null = sa.text("order_id IS NOT NULL"), sa.text("order_id IS NULL")
    op.create_index(
        "uq_notifications_type_order",
        "notifications",
        ["type", "order_id"],
        unique=True,
        sqlite_where=not_null,
        postgresql_where=not_null,
    )
    op.create_index(
        "uq_notifications_user_type_no_order",
        "notifications",
        ["user_id", "type"],
        unique=True,
        sqlite_where=null,
        postgresql_where=null,
    )
    op.create_index("ix_notifications_user_created", "notifications", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("users")
