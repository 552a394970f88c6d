"""notifications.audience and .step: admin alerts, one per order and saga step, for every admin

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Every notification before this one was for its user.
    op.add_column("notifications", sa.Column("audience", sa.String(8), nullable=False, server_default="user"))
    op.add_column("notifications", sa.Column("step", sa.String(64), nullable=True))
    # One notification of a type per order holds for users; admins get one alert per step.
    op.drop_index("uq_notifications_type_order", table_name="notifications")
    users_only = sa.text("order_id IS NOT NULL AND audience = 'user'")
    op.create_index(
        "uq_notifications_type_order",
        "notifications",
        ["type", "order_id"],
        unique=True,
        sqlite_where=users_only,
        postgresql_where=users_only,
    )
    admins = sa.text("audience = 'admins'")
    op.create_index(
        "uq_notifications_admins_order_step",
        "notifications",
        ["order_id", "step"],
        unique=True,
        sqlite_where=admins,
        postgresql_where=admins,
    )


def downgrade() -> None:
    op.drop_index("uq_notifications_admins_order_step", table_name="notifications")
    op.drop_index("uq_notifications_type_order", table_name="notifications")
    op.execute("DELETE FROM notifications WHERE audience = 'admins'")
    not_null = sa.text("order_id IS NOT NULL")
    op.create_index(
        "uq_notifications_type_order",
        "notifications",
        ["type", "order_id"],
        unique=True,
        sqlite_where=not_null,
        postgresql_where=not_null,
    )
    with op.batch_alter_table("notifications") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("step")
        batch.drop_column("audience")
