"""The monolith's one database, old style: upper-case tables and columns, codes instead of
words, soft deletes (`DEL_YN`), dates as `YYYYMMDDHHMMSS` text, and orders joined to products by
foreign key in the same schema (the coupling the new services were cut out of).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()

# The catalog. Rows are written only by the product sync (sync.py); a deleted product stays as
# DEL_YN = 'Y' so old order lines keep pointing at it.
TB_PRODUCT = sa.Table(
    "TB_PRODUCT",
    metadata,
    sa.Column("PROD_ID", sa.String(36), primary_key=True),
    # The SKU. Not unique: a deleted product's row stays, and its SKU may come back on a new one.
    sa.Column("PROD_CD", sa.String(64), nullable=False),
    sa.Column("PROD_NM", sa.String(200), nullable=False),
    sa.Column("PROD_DESC", sa.Text, nullable=False),
    sa.Column("CAT_CD", sa.String(64), nullable=False),
    sa.Column("SALE_PRC", sa.Numeric(12, 2), nullable=False),
    sa.Column("CURR_CD", sa.String(3), nullable=False),
    sa.Column("DEL_YN", sa.String(1), nullable=False),
    sa.Column("REG_DT", sa.String(14), nullable=False),
    sa.Column("UPD_DT", sa.String(14), nullable=False),
    # When the product service made the change last applied here (the event's timestamp, UTC
    # ISO text): an older event delivered late is skipped instead of undoing a newer one.
    sa.Column("SYNC_TS", sa.String(32), nullable=False),
)

TB_ORDER = sa.Table(
    "TB_ORDER",
    metadata,
    sa.Column("ORD_NO", sa.String(36), primary_key=True),
    sa.Column("CUST_ID", sa.String(36), nullable=False),
    sa.Column("ORD_STAT_CD", sa.String(2), nullable=False),
    sa.Column("TOT_AMT", sa.Numeric(12, 2), nullable=False),
    sa.Column("CURR_CD", sa.String(3), nullable=False),
    sa.Column("ORD_DT", sa.String(14), nullable=False),
)

TB_ORDER_DTL = sa.Table(
    "TB_ORDER_DTL",
    metadata,
    sa.Column("ORD_NO", sa.String(36), sa.ForeignKey("TB_ORDER.ORD_NO"), primary_key=True),
    sa.Column("LINE_NO", sa.Integer, primary_key=True),
    sa.Column("PROD_ID", sa.String(36), sa.ForeignKey("TB_PRODUCT.PROD_ID"), nullable=False),
    sa.Column("ORD_QTY", sa.Integer, nullable=False),
    sa.Column("UNIT_PRC", sa.Numeric(12, 2), nullable=False),
)

# ORD_STAT_CD: the monolith only ever received orders; fulfilment was a batch job elsewhere.
ORDER_RECEIVED = "10"


def legacy_date(moment: datetime | None = None) -> str:
    """`YYYYMMDDHHMMSS` in UTC, the monolith's date format."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")


def sync_stamp(moment: datetime) -> str:
    """A fixed-width UTC text that sorts like the time it names (microseconds kept)."""
    if moment.tzinfo is None:  # envelopes carry UTC; a naive one is read as such
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
