"""The outbox and inbox tables every service database has, and the migration that creates them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True, index=True),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)


def create_messaging_tables(op: Any) -> None:
    """Call from a service's first migration: `create_messaging_tables(op)`."""
    for table in (outbox, inbox):
        op.create_table(table.name, *[c.copy() for c in table.columns])
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "seq"])
