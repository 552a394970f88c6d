"""payments.provider_reference: the provider's id of the capture, which a refund names

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Payments captured before this column was added have none: their refunds name no capture.
    op.add_column("payments", sa.Column("provider_reference", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("provider_reference")
