"""orders.shipping_cost: the shipping service's quote, part of the total

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Orders placed before shipping was priced shipped free: their total is their items.
    op.add_column("orders", sa.Column("shipping_cost", sa.Numeric(12, 2), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("shipping_cost")
