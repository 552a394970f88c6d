"""TB_PRODUCT, TB_ORDER, TB_ORDER_DTL, outbox, inbox

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
        "TB_PRODUCT",
        sa.Column("PROD_ID", sa.String(36), primary_key=True),
        sa.Column("PROD_CD", sa.String(64), nullable=False),
        sa.Column("PROD_NM", sa.String(200), nullable=False),
        sa.Column("PROD_DESC", sa.Text, nullable=False),
        sa.Column("CAT_CD", sa.String(64), nullable=False),
        sa.Column("SALE_PRC", sa.Numeric(12, 2), nullable=False),
        sa.Column("CURR_CD", sa.String(3), nullable=False),
        sa.Column("DEL_YN", sa.String(1), nullable=False),
        sa.Column("REG_DT", sa.String(14), nullable=False),
        sa.Column("UPD_DT", sa.String(14), nullable=False),
        sa.Column("SYNC_TS", sa.String(32), nullable=False),
    )
    op.create_index("IX_TB_PRODUCT_PROD_CD", "TB_PRODUCT", ["PROD_CD"])
    op.create_index("IX_TB_PRODUCT_CAT_CD", "TB_PRODUCT", ["CAT_CD"])
    op.create_table(
        "TB_ORDER",
        sa.Column("ORD_NO", sa.String(36), primary_key=True),
        sa.Column("CUST_ID", sa.String(36), nullable=False),
        sa.Column("ORD_STAT_CD", sa.String(2), nullable=False),
        sa.Column("TOT_AMT", sa.Numeric(12, 2), nullable=False),
        sa.Column("CURR_CD", sa.String(3), nullable=False),
        sa.Column("ORD_DT", sa.String(14), nullable=False),
    )
    op.create_index("IX_TB_ORDER_CUST_ID", "TB_ORDER", ["CUST_ID"])
    op.create_table(
        "TB_ORDER_DTL",
        sa.Column("ORD_NO", sa.String(36), sa.ForeignKey("TB_ORDER.ORD_NO"), primary_key=True),
        sa.Column("LINE_NO", sa.Integer, primary_key=True),
        sa.Column("PROD_ID", sa.String(36), sa.ForeignKey("TB_PRODUCT.PROD_ID"), nullable=False),
        sa.Column("ORD_QTY", sa.Integer, nullable=False),
        sa.Column("UNIT_PRC", sa.Numeric(12, 2), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("TB_ORDER_DTL")
    op.drop_table("TB_ORDER")
    op.drop_table("TB_PRODUCT")
