"""An append-only event store in the service's own database, and projection checkpoints.

One row per event: (aggregate id, version) is unique, so two writers that both loaded version
N of an aggregate cannot both append N+1: the second gets `ConcurrencyConflict` and retries its
command on fresh state (optimistic concurrency). `position` orders every event of the store, so
projections can be rebuilt by reading it from the start. Appends go through the caller's
session: the events, the state they imply and the outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import SchemaItem

metadata = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere a BIGINT identity.
_Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _columns() -> list[SchemaItem]:
    return [
        sa.Column("position", _Position, primary_key=True, autoincrement=True),
        sa.Column("aggregate_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("aggregate_id", "version", name="uq_event_store_aggregate_version"),
    ]


def _checkpoint_columns() -> list[SchemaItem]:
    return [
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


event_store = sa.Table("event_store", metadata, *_columns())
projection_checkpoints = sa.Table("projection_checkpoints", metadata, *_checkpoint_columns())


def create_event_store_tables(op: Any) -> None:
    """For a service's Alembic migration: the same tables the store uses."""
    op.create_table("event_store", *_columns())
    op.create_table("projection_checkpoints", *_checkpoint_columns())


class ConcurrencyConflict(Exception):
    """Someone appended to the aggregate since it was loaded: reload and decide again."""


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    position: int
    aggregate_id: str
    version: int  # 1 for an aggregate's first event
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class EventStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self, aggregate_id: str) -> list[StoredEvent]:
        """The aggregate's events, oldest first; empty if it has none."""
        rows = await self.session.execute(
            sa.select(event_store)
            .where(event_store.c.aggregate_id == aggregate_id)
            .order_by(event_store.c.version)
        )
        return [_stored(row) for row in rows]

    async def append(
        self, aggregate_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[StoredEvent]:
        """Append after `expected_version` (the number of events the caller folded)."""
        stored: list[StoredEvent] = []
        now = datetime.now(UTC)
        try:
            async with self.session.begin_nested():
                for offset, event in enumerate(events, start=1):
                    values = {
                        "aggregate_id": aggregate_id,
                        "version": expected_version + offset,
                        "type": event.type,
                        "data": event.data,
                        "metadata": event.metadata,
                        "recorded_at": now,
                    }
                    position = await self.session.scalar(
                        sa.insert(event_store).values(**values).returning(event_store.c.position)
                    )
                    assert position is not None
                    stored.append(StoredEvent(position=int(position), **values))  # type: ignore[arg-type]
        except IntegrityError:
            raise ConcurrencyConflict(
                f"{aggregate_id} changed since version {expected_version} was loaded"
            ) from None
        return stored

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events of every aggregate with a position after `after`, in position order."""
        rows = await self.session.execute(
            sa.select(event_store)
            .where(event_store.c.position > after)
            .order_by(event_store.c.position)
            .limit(limit)
        )
        return [_stored(row) for row in rows]

    async def count(self) -> int:
        return int(await self.session.scalar(sa.select(sa.func.count()).select_from(event_store)) or 0)


class Checkpoints:
    """How far each projection has read the store (its last applied position)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> int:
        found = await self.session.scalar(
            sa.select(projection_checkpoints.c.position).where(projection_checkpoints.c.name == name)
        )
        return int(found or 0)

    async def advance(self, name: str, position: int) -> None:
        """Move forward only: an earlier position (a concurrent writer's) never moves it back."""
        now = datetime.now(UTC)
        forward = (
            sa.update(projection_checkpoints)
            .where(projection_checkpoints.c.name == name, projection_checkpoints.c.position < position)
            .values(position=position, updated_at=now)
        )
        updated = await self.session.execute(forward)
        if updated.rowcount == 0 and not await self._exists(name):  # type: ignore[attr-defined]
            try:
                async with self.session.begin_nested():
                    await self.session.execute(
                        sa.insert(projection_checkpoints).values(name=name, position=position, updated_at=now)
                    )
            except IntegrityError:
                # A concurrent transaction created the row first (PostgreSQL): move that one instead.
                await self.session.execute(forward)

    async def reset(self, name: str) -> None:
        await self.session.execute(
            sa.delete(projection_checkpoints).where(projection_checkpoints.c.name == name)
        )

    async def _exists(self, name: str) -> bool:
        found = await self.session.scalar(
            sa.select(sa.func.count())
            .select_from(projection_checkpoints)
            .where(projection_checkpoints.c.name == name)
        )
        return bool(found)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        position=int(row.position),
        aggregate_id=row.aggregate_id,
        version=int(row.version),
        type=row.type,
        data=row.data,
        metadata=row.metadata,
        recorded_at=_utc(row.recorded_at),
    )
