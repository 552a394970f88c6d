"""The event store and projection checkpoints on a real database, SQLite and PostgreSQL:
versions 1..n per aggregate, one position order for the whole store, optimistic concurrency
(a stale append is refused, of concurrent writers on one aggregate exactly one wins), and
checkpoints that only move forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from msashop.chassis.db import Database
from msashop.chassis.event_store import (
    Checkpoints,
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    StoredEvent,
    metadata,
    projection_checkpoints,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'events.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")  # fails instead of skipping when CI=true
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def new(n: int, type_: str = "Happened") -> NewEvent:
    return NewEvent(type_, {"n": n, "nested": {"list": [1, "two", None]}, "text": "é€"}, {"cause": f"c{n}"})


async def append(db: Database, aggregate_id: str, expected: int, *events: NewEvent) -> list[StoredEvent]:
    async with db.session() as session, session.begin():
        return await EventStore(session).append(aggregate_id, expected, events)


async def load(db: Database, aggregate_id: str) -> list[StoredEvent]:
    async with db.session() as session:
        return await EventStore(session).load(aggregate_id)


async def read_all(db: Database, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
    async with db.session() as session:
        return await EventStore(session).read_all(after=after, limit=limit)


# --- append and load ----------------------------------------------------------------------------
async def test_appended_events_load_back_as_versions_1_to_n(db: Database) -> None:
    stored = await append(db, "a1", 0, new(1, "Placed"), new(2), new(3, "Closed"))
    assert [(e.aggregate_id, e.version, e.type) for e in stored] == [
        ("a1", 1, "Placed"),
        ("a1", 2, "Happened"),
        ("a1", 3, "Closed"),
    ]
    positions = [e.position for e in stored]
    assert positions == sorted(positions) and len(set(positions)) == 3
    loaded = await load(db, "a1")
    assert loaded == stored
    assert loaded[1].data == {"n": 2, "nested": {"list": [1, "two", None]}, "text": "é€"}
    assert loaded[1].metadata == {"cause": "c2"}
    assert all(
        e.recorded_at.tzinfo is not None and e.recorded_at.utcoffset() == UTC.utcoffset(None) for e in loaded
    )


async def test_later_appends_continue_the_versions_and_the_positions(db: Database) -> None:
    first = await append(db, "a1", 0, new(1))
    other = await append(db, "a2", 0, new(1), new(2))
    more = await append(db, "a1", 1, new(2), new(3))
    assert [e.version for e in await load(db, "a1")] == [1, 2, 3]
    assert [e.version for e in await load(db, "a2")] == [1, 2]
    positions = [e.position for e in (*first, *other, *more)]
    assert positions == sorted(positions) and len(set(positions)) == 5  # one order for the whole store
    assert await load(db, "nobody") == []


async def test_appending_nothing_stores_nothing(db: Database) -> None:
    assert await append(db, "a1", 0) == []
    assert await load(db, "a1") == []


# --- optimistic concurrency ---------------------------------------------------------------------
@pytest.mark.parametrize("stale", [0, 1])
async def test_a_stale_append_conflicts_and_leaves_the_transaction_usable(db: Database, stale: int) -> None:
    async with db.session() as session, session.begin():
        store = EventStore(session)
        await store.append("a1", 0, [new(1), new(2)])
        with pytest.raises(ConcurrencyConflict, match=f"a1 changed since version {stale}"):
            await store.append("a1", stale, [new(99), new(100)])
        # Only the conflicting append was undone: the transaction goes on and commits.
        await store.append("a1", 2, [new(3)])
        await store.append("a2", 0, [new(1)])
    assert [e.data["n"] for e in await load(db, "a1")] == [1, 2, 3]
    assert [e.data["n"] for e in await load(db, "a2")] == [1]


async def test_an_append_that_skips_a_version_is_stored_as_asked(db: Database) -> None:
    """The store checks uniqueness only; a gap is the caller's bug, and `project` refuses it."""
    await append(db, "a1", 0, new(1))
    assert [e.version for e in await append(db, "a1", 5, new(6))] == [6]


@pytest.mark.parametrize("writers", [2, 5])
async def test_of_concurrent_writers_on_one_aggregate_exactly_one_wins(db: Database, writers: int) -> None:
    await append(db, "a1", 0, new(0))
    loaded = asyncio.Barrier(writers)

    async def writer(n: int) -> list[StoredEvent]:
        expected = len(await load(db, "a1"))  # every writer decides on version 1
        await loaded.wait()
        return await append(db, "a1", expected, new(n), new(n + 100))

    results = await asyncio.gather(*(writer(n) for n in range(1, writers + 1)), return_exceptions=True)
    won = [r for r in results if isinstance(r, list)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == writers - 1
    assert all(isinstance(e, ConcurrencyConflict) for e in lost), lost
    winner = won[0][0].data["n"]
    assert [(e.version, e.data["n"]) for e in await load(db, "a1")] == [
        (1, 0),
        (2, winner),
        (3, winner + 100),
    ]


@pytest.mark.postgres
async def test_on_postgres_the_second_writer_waits_for_the_first_and_then_conflicts(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.session() as first, db.session() as second:
            await first.begin()
            await second.begin()
            await EventStore(first).append("a1", 0, [new(1)])
            racing = asyncio.create_task(EventStore(second).append("a1", 0, [new(2)]))
            await asyncio.sleep(0.3)
            assert not racing.done()  # held by the first transaction's uncommitted version 1
            await first.commit()
            with pytest.raises(ConcurrencyConflict):
                await asyncio.wait_for(racing, timeout=5)
            await EventStore(second).append("a1", 1, [new(3)])  # reloaded: still usable
            await second.commit()
        assert [e.data["n"] for e in await load(db, "a1")] == [1, 3]
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_on_postgres_the_waiting_writer_wins_when_the_first_rolls_back(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.session() as first, db.session() as second:
            await first.begin()
            await second.begin()
            await EventStore(first).append("a1", 0, [new(1)])
            racing = asyncio.create_task(EventStore(second).append("a1", 0, [new(2)]))
            await asyncio.sleep(0.3)
            await first.rollback()
            assert [e.version for e in await asyncio.wait_for(racing, timeout=5)] == [1]
            await second.commit()
        assert [e.data["n"] for e in await load(db, "a1")] == [2]
    finally:
        await db.dispose()


# --- reading the whole store --------------------------------------------------------------------
async def test_read_all_pages_through_every_aggregate_in_position_order(db: Database) -> None:
    await append(db, "a1", 0, new(1))
    await append(db, "a2", 0, new(1), new(2))
    await append(db, "a1", 1, new(2))
    await append(db, "a3", 0, new(1))
    everything = await read_all(db)
    assert [(e.aggregate_id, e.version) for e in everything] == [
        ("a1", 1),
        ("a2", 1),
        ("a2", 2),
        ("a1", 2),
        ("a3", 1),
    ]
    positions = [e.position for e in everything]
    assert await read_all(db, limit=2) == everything[:2]
    assert await read_all(db, after=positions[1]) == everything[2:]
    assert await read_all(db, after=positions[1], limit=2) == everything[2:4]
    assert await read_all(db, after=positions[-1]) == []

    paged: list[StoredEvent] = []
    while batch := await read_all(db, after=paged[-1].position if paged else 0, limit=2):
        paged.extend(batch)
    assert paged == everything
    async with db.session() as session:
        assert await EventStore(session).count() == 5


# --- checkpoints --------------------------------------------------------------------------------
async def checkpoint(db: Database, name: str) -> int:
    async with db.session() as session:
        return await Checkpoints(session).get(name)


async def advance(db: Database, name: str, position: int) -> None:
    async with db.session() as session, session.begin():
        await Checkpoints(session).advance(name, position)


async def test_a_checkpoint_starts_at_zero_and_only_moves_forward(db: Database) -> None:
    assert await checkpoint(db, "orders") == 0
    await advance(db, "orders", 5)
    assert await checkpoint(db, "orders") == 5
    await advance(db, "orders", 3)  # a concurrent writer's earlier position
    assert await checkpoint(db, "orders") == 5
    await advance(db, "orders", 5)  # the same position again: no second row, no error
    await advance(db, "orders", 8)
    assert await checkpoint(db, "orders") == 8
    await advance(db, "other", 2)
    assert (await checkpoint(db, "orders"), await checkpoint(db, "other")) == (8, 2)
    async with db.session() as session:
        rows = await session.execute(sa.select(projection_checkpoints.c.name).order_by("name"))
        assert list(rows.scalars()) == ["orders", "other"]


async def test_a_reset_checkpoint_starts_over(db: Database) -> None:
    await advance(db, "orders", 8)
    await advance(db, "other", 4)
    async with db.session() as session, session.begin():
        await Checkpoints(session).reset("orders")
    assert (await checkpoint(db, "orders"), await checkpoint(db, "other")) == (0, 4)
    await advance(db, "orders", 2)  # lower than before the reset: a rebuild's new start
    assert await checkpoint(db, "orders") == 2


async def test_a_checkpoint_moves_with_its_transaction(db: Database) -> None:
    async with db.session() as session:
        async with session.begin():
            await Checkpoints(session).advance("orders", 3)
        await session.begin()
        await Checkpoints(session).advance("orders", 9)
        await session.rollback()
    assert await checkpoint(db, "orders") == 3


async def test_concurrent_first_advances_of_a_new_checkpoint_both_commit(db: Database) -> None:
    """Two writers' transactions may both be the first to advance a checkpoint nobody created yet."""
    started = asyncio.Barrier(2)

    async def writer(position: int) -> None:
        async with db.session() as session:
            await session.begin()
            await started.wait()
            await Checkpoints(session).advance("orders", position)
            await session.commit()

    await asyncio.gather(writer(4), writer(7))
    assert await checkpoint(db, "orders") == 7
