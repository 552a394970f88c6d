"""The idempotency store on a real database, SQLite and PostgreSQL: claim, finish, replay, reuse,
release, expiry and purge, a claim taken over after the lock timeout, and concurrent claims of one
key of which exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from msashop.chassis.db import Database
from msashop.chassis.idempotency import (
    Answer,
    Claim,
    ClaimLost,
    IdempotencyStore,
    KeyInProgress,
    KeyReused,
    State,
    idempotency_keys,
    metadata,
)

OP = "POST /things"
ANSWER = Answer(201, '{"id":"t1","name":"é"}'.encode())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(db, clock=clock)


async def claim(store: IdempotencyStore, key: str = "k1", fp: str = "f1", scope: str = "u1") -> Claim:
    begun = await store.begin(scope, key, operation=OP, fingerprint=fp)
    assert isinstance(begun, Claim), begun
    return begun


async def test_a_finished_key_replays_its_answer_byte_for_byte(store: IdempotencyStore) -> None:
    first = await claim(store)
    await store.finish(first, ANSWER)
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER
    record = await store.get("u1", "k1")
    assert record is not None and record.state is State.DONE


async def test_a_duplicate_while_the_first_runs_is_409_and_changes_nothing(store: IdempotencyStore) -> None:
    first = await claim(store)
    with pytest.raises(KeyInProgress):
        await store.begin("u1", "k1", operation=OP, fingerprint="f1")
    await store.finish(first, ANSWER)  # the first still holds the key
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER


async def test_another_request_under_the_key_is_422_in_progress_or_done(store: IdempotencyStore) -> None:
    first = await claim(store)
    with pytest.raises(KeyReused):
        await store.begin("u1", "k1", operation=OP, fingerprint="f2")
    await store.finish(first, ANSWER)
    with pytest.raises(KeyReused):
        await store.begin("u1", "k1", operation=OP, fingerprint="f2")
    with pytest.raises(KeyReused):
        await store.begin("u1", "k1", operation="POST /others", fingerprint="f1")


async def test_keys_are_per_scope(store: IdempotencyStore) -> None:
    await claim(store, scope="u1")
    other = await claim(store, scope="u2", fp="f2")  # same key, another user: unrelated
    await store.finish(other, ANSWER)


async def test_a_released_key_runs_again_and_a_finished_one_is_not_released(store: IdempotencyStore) -> None:
    failed = await claim(store)
    await store.release(failed)
    assert await store.get("u1", "k1") is None
    retry = await claim(store)
    await store.finish(retry, ANSWER)
    await store.release(retry)  # too late: the answer stays
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER


async def test_a_key_counts_as_new_after_24_hours(store: IdempotencyStore, clock: Clock) -> None:
    await store.finish(await claim(store), ANSWER)
    clock.now += timedelta(hours=24) - timedelta(seconds=1)
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER
    clock.now += timedelta(seconds=1)
    again = await claim(store, fp="f2")  # even with another body: the old key is gone
    record = await store.get("u1", "k1")
    assert record is not None and (record.fingerprint, record.state, record.created_at) == (
        "f2",
        State.IN_PROGRESS,
        clock.now,
    )
    await store.finish(again, ANSWER)


async def test_the_purge_deletes_only_expired_keys(
    store: IdempotencyStore, clock: Clock, db: Database
) -> None:
    await store.finish(await claim(store, "old"), ANSWER)
    await claim(store, "old-in-progress")
    clock.now += timedelta(hours=23)
    await store.finish(await claim(store, "young"), ANSWER)
    clock.now += timedelta(hours=1)
    assert await store.purge_expired() == 2
    async with db.read() as session:
        keys = set((await session.execute(sa.select(idempotency_keys.c.key))).scalars())
    assert keys == {"young"}


async def test_an_abandoned_claim_is_taken_over_and_its_owner_can_no_longer_finish(
    store: IdempotencyStore, clock: Clock
) -> None:
    stuck = await claim(store)
    clock.now += store.lock_timeout
    takeover = await claim(store)
    assert takeover.token != stuck.token
    with pytest.raises(ClaimLost):
        await store.finish(stuck, Answer(201, b'{"id":"twice"}'))
    await store.release(stuck)  # not its key any more: nothing happens
    await store.finish(takeover, ANSWER)
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER


async def test_an_answer_recorded_in_a_rolled_back_transaction_leaves_the_key_in_progress(
    store: IdempotencyStore, db: Database
) -> None:
    first = await claim(store)
    async with db.writing(), db.session() as session:
        await session.begin()
        await store.finish(first, ANSWER, session=session)
        await session.rollback()  # the request's effects failed: its answer goes with them
    with pytest.raises(KeyInProgress):
        await store.begin("u1", "k1", operation=OP, fingerprint="f1")
    async with db.writing(), db.session() as session, session.begin():
        await store.finish(first, ANSWER, session=session)
    assert await store.begin("u1", "k1", operation=OP, fingerprint="f1") == ANSWER


async def test_of_concurrent_claims_of_one_key_exactly_one_wins(store: IdempotencyStore) -> None:
    async def attempt() -> str:
        try:
            await claim(store)
        except KeyInProgress:
            return "409"
        return "claimed"

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert sorted(results) == ["409"] * 7 + ["claimed"]


async def test_of_concurrent_takeovers_of_an_expired_key_exactly_one_wins(
    store: IdempotencyStore, clock: Clock, db: Database
) -> None:
    await store.finish(await claim(store), ANSWER)
    clock.now += timedelta(days=2)
    # Two stores, two connections pools: like two replicas of a service on one database.
    other = IdempotencyStore(Database(db.url), clock=clock)
    try:

        async def attempt(on: IdempotencyStore) -> str:
            try:
                await claim(on)
            except KeyInProgress:
                return "409"
            return "claimed"

        results = await asyncio.gather(*(attempt(s) for s in (store, other, store, other)))
    finally:
        await other.db.dispose()
    assert sorted(results) == ["409", "409", "409", "claimed"]


async def test_an_instance_that_starts_frees_only_its_own_claims_in_progress(
    db: Database, clock: Clock
) -> None:
    mine = IdempotencyStore(db, clock=clock, owner="order-1")
    theirs = IdempotencyStore(db, clock=clock, owner="order-2")
    await claim(mine, "dead")  # its process died with this claim
    await mine.finish(await claim(mine, "finished"), ANSWER)
    await claim(theirs, "live")
    restarted = IdempotencyStore(db, clock=clock, owner="order-1")
    assert await restarted.release_abandoned() == 1
    assert await restarted.get("u1", "dead") is None
    assert await restarted.begin("u1", "finished", operation=OP, fingerprint="f1") == ANSWER
    with pytest.raises(KeyInProgress):
        await restarted.begin("u1", "live", operation=OP, fingerprint="f1")
