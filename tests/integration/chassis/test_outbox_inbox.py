"""Outbox and inbox on a real database, SQLite and PostgreSQL: state and events commit together,
the relay publishes every committed event in order despite a failing broker, and a redelivered
event has its effects once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.messaging_tables import inbox, outbox
from msashop.chassis.outbox_relay import OutboxRelay
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope
from tests.conftest import wait_until

MIGRATIONS = Path(__file__).parent / "migrations"
counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chassis.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_service(tmp_path: Path, database_url: str, bus: InMemoryBus | None = None) -> Service:
    settings = ServiceSettings.load("probe", data_dir=tmp_path, database_url=database_url)
    return Service(settings, migrations=MIGRATIONS, bus=bus, uses_bus=bus is not None)


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[Service]:
    """A migrated service without a broker: events stay in the outbox for the test to inspect."""
    service = make_service(tmp_path, database_url)
    async with service.app.router.lifespan_context(service.app):
        yield service


def event(n: int, subject: str = "counter.bumped") -> Envelope:
    return Envelope(source="probe", type=subject, key=f"k{n}", data={"n": n})


async def bump(uow: UnitOfWork, name: str = "hits") -> None:
    updated = await uow.session.execute(
        sa.update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        await uow.session.execute(sa.insert(counters).values(name=name, value=1))


async def counter(service: Service, name: str = "hits") -> int:
    assert service.db is not None
    async with service.db.session() as session:
        return int(await session.scalar(sa.select(counters.c.value).where(counters.c.name == name)) or 0)


async def outbox_rows(service: Service) -> list[sa.Row]:  # type: ignore[type-arg]
    assert service.db is not None
    async with service.db.session() as session:
        return list((await session.execute(sa.select(outbox).order_by(outbox.c.seq))).all())


async def inbox_rows(service: Service) -> list[sa.Row]:  # type: ignore[type-arg]
    assert service.db is not None
    async with service.db.session() as session:
        return list((await session.execute(sa.select(inbox))).all())


# --- unit of work --------------------------------------------------------------------------------
async def test_commit_writes_the_state_change_and_its_event_together(service: Service) -> None:
    bumped = event(1)
    async with service.unit_of_work() as uow:
        await bump(uow)
        uow.publish(bumped)
        await uow.commit()

    assert await counter(service) == 1
    rows = await outbox_rows(service)
    assert [(r.event_id, r.subject, r.key, r.published_at) for r in rows] == [
        (bumped.id, "counter.bumped", "k1", None)
    ]
    assert Envelope.model_validate_json(rows[0].envelope).data == {"n": 1}


async def test_exception_in_the_unit_of_work_leaves_neither_state_nor_event(service: Service) -> None:
    with pytest.raises(RuntimeError):
        async with service.unit_of_work() as uow:
            await bump(uow)
            uow.publish(event(1))
            raise RuntimeError("business rule failed half way")

    assert await counter(service) == 0
    assert await outbox_rows(service) == []


async def test_leaving_without_commit_rolls_everything_back(service: Service) -> None:
    async with service.unit_of_work() as uow:
        await bump(uow)
        uow.publish(event(1))

    assert await counter(service) == 0
    assert await outbox_rows(service) == []


async def test_the_same_event_queued_twice_is_kept_once(service: Service) -> None:
    twice = event(1)
    for _ in range(2):
        async with service.unit_of_work() as uow:
            uow.publish(twice)
            await uow.commit()

    assert [r.event_id for r in await outbox_rows(service)] == [twice.id]


# --- relay ---------------------------------------------------------------------------------------
class RecordingBus(InMemoryBus):
    """Accepts publishes, except `fail_next` of them which raise as an unreachable broker would."""

    def __init__(self, *, succeed_first: int = 0, fail_next: int = 0) -> None:
        super().__init__()
        self.succeed_first = succeed_first
        self.fail_next = fail_next
        self.refused = 0

    async def publish(self, envelope: Envelope) -> None:
        if len(self.published) >= self.succeed_first and self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            raise ConnectionError("broker unreachable")
        await super().publish(envelope)


async def commit_events(
    service: Service, envelopes: list[Envelope], wake: asyncio.Event | None = None
) -> None:
    assert service.db is not None
    for envelope in envelopes:
        async with UnitOfWork(service.db, wake) as uow:
            uow.publish(envelope)
            await uow.commit()


async def test_relay_publishes_in_commit_order_and_marks_rows_published(service: Service) -> None:
    assert service.db is not None
    events = [event(n) for n in range(7)]
    await commit_events(service, events)
    bus = RecordingBus()
    relay = OutboxRelay(service.db, bus, batch=3)

    while await relay.publish_pending():
        pass

    assert [e.id for e in bus.published] == [e.id for e in events]
    assert all(r.published_at is not None for r in await outbox_rows(service))
    assert await relay.pending() == 0
    assert await relay.publish_pending() == 0
    assert len(bus.published) == 7


async def test_relay_survives_a_failing_broker_and_drains_the_backlog_once(service: Service) -> None:
    assert service.db is not None
    bus = RecordingBus(succeed_first=2, fail_next=3)
    relay = OutboxRelay(service.db, bus, idle_poll=0.1)
    events = [event(n) for n in range(10)]
    relay.start()
    try:
        await commit_events(service, events[:5], relay.wake)
        await wait_until(lambda: bus.refused == 3, within=10)
        await commit_events(service, events[5:], relay.wake)  # more arrive while it retries
        await wait_until(lambda: len(bus.published) >= 10, within=15)
        await asyncio.sleep(0.3)  # a duplicate would show up here
    finally:
        await relay.stop()

    assert [e.id for e in bus.published] == [e.id for e in events]
    assert await relay.pending() == 0


async def test_overlapping_publish_calls_publish_each_event_once(service: Service) -> None:
    assert service.db is not None
    events = [event(n) for n in range(20)]
    await commit_events(service, events)
    bus = RecordingBus()
    relay = OutboxRelay(service.db, bus)

    await asyncio.gather(relay.publish_pending(), relay.publish_pending(), relay.publish_pending())

    assert [e.id for e in bus.published] == [e.id for e in events]


async def test_outbox_lag_is_the_age_of_the_oldest_unpublished_event(service: Service) -> None:
    assert service.db is not None
    relay = OutboxRelay(service.db, InMemoryBus())
    assert await relay.lag_seconds() == 0.0
    await commit_events(service, [event(1)])
    await asyncio.sleep(0.3)
    await commit_events(service, [event(2)])

    assert 0.3 <= await relay.lag_seconds() < 5

    await relay.publish_pending()
    assert await relay.lag_seconds() == 0.0


class CommittingBus(InMemoryBus):
    """While the relay publishes the first event, another transaction commits a second one."""

    def __init__(self, service: Service, relay: OutboxRelay, later: Envelope) -> None:
        super().__init__()
        self.service, self.relay, self.later = service, relay, later

    async def publish(self, envelope: Envelope) -> None:
        await super().publish(envelope)
        if envelope.id != self.later.id:
            await commit_events(self.service, [self.later], self.relay.wake)


async def test_an_event_committed_during_a_publish_goes_out_without_waiting_for_the_idle_poll(
    service: Service,
) -> None:
    assert service.db is not None
    first, later = event(1), event(2)
    relay = OutboxRelay(service.db, InMemoryBus(), idle_poll=30)
    bus = relay.bus = CommittingBus(service, relay, later)
    await commit_events(service, [first])
    relay.start()
    try:
        await wait_until(lambda: len(bus.published) == 2, within=5)
    finally:
        await relay.stop()
    assert [e.id for e in bus.published] == [first.id, later.id]


# --- inbox ---------------------------------------------------------------------------------------
async def test_second_claim_of_the_same_event_by_the_same_consumer_is_refused(service: Service) -> None:
    message = event(1)
    async with service.unit_of_work() as uow:
        assert await uow.claim("probe", message) is True
        await uow.commit()
    async with service.unit_of_work() as uow:
        assert await uow.claim("probe", message) is False
        assert await uow.claim("another-consumer", message) is True
        await uow.commit()

    assert sorted(r.consumer for r in await inbox_rows(service)) == ["another-consumer", "probe"]


@pytest.fixture
async def consuming(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Service, InMemoryBus, list[str]]]:
    """A service consuming `counter.bump`: it bumps the counter and publishes `counter.bumped`.

    The handler refuses an event whose data says `fail`, the first time it sees it.
    """
    bus = InMemoryBus()
    service = make_service(tmp_path, database_url, bus=bus)
    failed_once: list[str] = []

    async def on_bump(envelope: Envelope, uow: UnitOfWork) -> None:
        await bump(uow)
        uow.publish(
            Envelope(source="probe", type="counter.bumped", key=envelope.key, id=f"after-{envelope.id}")
        )
        if envelope.data.get("fail") and envelope.id not in failed_once:
            failed_once.append(envelope.id)
            raise RuntimeError("transient failure after the effects")

    service.on_message("counter.bump", on_bump)
    async with service.app.router.lifespan_context(service.app):
        yield service, bus, failed_once


async def test_redelivered_event_has_its_effects_once(consuming) -> None:
    service, bus, _ = consuming
    message = event(1, "counter.bump")

    await bus.publish(message)
    await bus.publish(message)  # at-least-once delivery: the broker sends it again

    assert bus.failures == []
    assert await counter(service) == 1
    assert [r.event_id for r in await outbox_rows(service)] == [f"after-{message.id}"]
    assert [(r.consumer, r.event_id) for r in await inbox_rows(service)] == [("probe", message.id)]


async def test_failed_handler_leaves_no_trace_so_the_redelivery_applies_it(consuming) -> None:
    service, bus, failed_once = consuming
    message = Envelope(source="probe", type="counter.bump", key="k1", data={"fail": True})

    await bus.publish(message)  # refused once, then redelivered (the fake retries at once)

    assert failed_once == [message.id] and len(bus.failures) == 1
    assert await counter(service) == 1
    assert [r.event_id for r in await outbox_rows(service)] == [f"after-{message.id}"]
    assert [(r.consumer, r.event_id) for r in await inbox_rows(service)] == [("probe", message.id)]

    await bus.publish(message)  # and a duplicate later changes nothing

    assert await counter(service) == 1
    assert len(await outbox_rows(service)) == 1


async def test_concurrent_deliveries_of_one_event_apply_it_once(consuming) -> None:
    service, bus, _ = consuming
    message = event(1, "counter.bump")

    await asyncio.gather(*(bus.publish(message) for _ in range(8)))

    assert bus.failures == []
    assert await counter(service) == 1
    assert len(await inbox_rows(service)) == 1


@pytest.mark.postgres
async def test_concurrent_claims_on_postgres_only_one_wins(tmp_path: Path, postgres_url: str) -> None:
    service = make_service(tmp_path, postgres_url)
    message = event(1)
    async with service.app.router.lifespan_context(service.app):
        first = service.unit_of_work()
        second = service.unit_of_work()
        async with first, second:
            assert await first.claim("probe", message) is True
            # The second claim waits on the first transaction's uncommitted row ...
            racing = asyncio.create_task(second.claim("probe", message))
            await asyncio.sleep(0.3)
            assert not racing.done()
            await first.commit()
            # ... and loses once it commits.
            assert await asyncio.wait_for(racing, timeout=5) is False
            await second.commit()
        assert [r.event_id for r in await inbox_rows(service)] == [message.id]
