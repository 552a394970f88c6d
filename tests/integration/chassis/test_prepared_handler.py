"""A PreparedHandler on a real database: prepare runs before the unit of work, holding no lock;
a redelivery skips it; the inbox claim still decides which delivery applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.crash_points import CrashPoints
from msashop.chassis.prepared import PreparedHandler, Reader
from msashop.chassis.service import Service
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope
from tests.conftest import wait_until
from tests.integration.chassis.test_outbox_inbox import bump, counter, event, inbox_rows, make_service


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chassis.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Probe:
    """A two-phase `counter.bump` handler that writes down what ran, in order.

    prepare waits for `gate` (open unless a test closes it) and fails `prepare_failures` times;
    apply bumps the counter, publishes `counter.bumped`, and fails `apply_failures` times.
    """

    steps: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    preparing: asyncio.Event = field(default_factory=asyncio.Event)
    prepare_failures: int = 0
    apply_failures: int = 0

    def __post_init__(self) -> None:
        self.gate.set()

    async def prepare(self, envelope: Envelope, read: Reader) -> str:
        self.steps.append("prepare")
        self.preparing.set()
        await self.gate.wait()
        if self.prepare_failures:
            self.prepare_failures -= 1
            raise ConnectionError("provider unreachable")
        return f"prepared-{envelope.id}"

    async def apply(self, envelope: Envelope, uow: UnitOfWork, prepared: str) -> None:
        self.steps.append(f"apply:{prepared}")
        await bump(uow)
        uow.publish(
            Envelope(source="probe", type="counter.bumped", key=envelope.key, id=f"after-{envelope.id}")
        )
        if self.apply_failures:
            self.apply_failures -= 1
            raise RuntimeError("failed after the effects")


class RecordingCrashPoints(CrashPoints):
    """Writes down the crash points reached instead of exiting."""

    def __init__(self, steps: list[str]) -> None:
        super().__init__(None)
        self.steps = steps

    def reach(self, point: str) -> None:
        self.steps.append(point)


async def _consuming(service: Service, probe: Probe) -> AsyncIterator[tuple[Service, InMemoryBus, Probe]]:
    assert isinstance(service.bus, InMemoryBus)
    service.on_message("counter.bump", PreparedHandler(probe.prepare, probe.apply))
    service.crash_points = RecordingCrashPoints(probe.steps)
    async with service.app.router.lifespan_context(service.app):
        yield service, service.bus, probe


@pytest.fixture
async def consuming(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Service, InMemoryBus, Probe]]:
    async for running in _consuming(make_service(tmp_path, database_url, bus=InMemoryBus()), Probe()):
        yield running


@pytest.fixture
async def on_sqlite(tmp_path: Path) -> AsyncIterator[tuple[Service, InMemoryBus, Probe]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chassis.sqlite'}"
    async for running in _consuming(make_service(tmp_path, url, bus=InMemoryBus()), Probe()):
        yield running


async def test_prepare_holds_no_write_lock_so_another_unit_of_work_writes_meanwhile(on_sqlite) -> None:
    service, bus, probe = on_sqlite
    probe.gate.clear()
    delivery = asyncio.create_task(bus.publish(event(1, "counter.bump")))
    try:
        await asyncio.wait_for(probe.preparing.wait(), timeout=5)

        async def write_elsewhere() -> None:
            async with service.unit_of_work() as uow:
                await bump(uow, "elsewhere")
                await uow.commit()

        # A handler running inside its unit of work would hold SQLite's write lock here, and this
        # BEGIN IMMEDIATE would wait for it (up to the 30 s busy timeout).
        await asyncio.wait_for(write_elsewhere(), timeout=2)
        assert not delivery.done()
    finally:
        probe.gate.set()
    await delivery

    assert bus.failures == []
    assert (await counter(service, "elsewhere"), await counter(service)) == (1, 1)


async def test_prepare_then_claim_apply_and_commit_between_the_crash_points(consuming) -> None:
    service, bus, probe = consuming
    message = event(1, "counter.bump")

    await bus.publish(message)

    assert probe.steps == [
        "prepare",
        f"apply:prepared-{message.id}",
        "before_commit:counter.bump",
        "after_commit:counter.bump",
    ]
    assert [(r.consumer, r.event_id) for r in await inbox_rows(service)] == [("probe", message.id)]


async def test_a_redelivered_event_skips_prepare(consuming) -> None:
    service, bus, probe = consuming
    message = event(1, "counter.bump")

    await bus.publish(message)
    probe.steps.clear()
    await bus.publish(message)  # at-least-once delivery: the broker sends it again

    assert probe.steps == []
    assert bus.failures == []
    assert await counter(service) == 1


async def test_concurrent_deliveries_both_prepare_and_the_claim_applies_one(consuming) -> None:
    service, bus, probe = consuming
    message = event(1, "counter.bump")
    probe.gate.clear()

    deliveries = [asyncio.create_task(bus.publish(message)) for _ in range(2)]
    # Both are past the inbox read and neither has claimed yet.
    await wait_until(lambda: probe.steps.count("prepare") == 2, within=5)
    probe.gate.set()
    await asyncio.gather(*deliveries)

    assert bus.failures == []
    assert probe.steps.count(f"apply:prepared-{message.id}") == 1
    assert await counter(service) == 1
    assert len(await inbox_rows(service)) == 1


@pytest.mark.parametrize("failing", ["prepare", "apply"])
async def test_a_failure_before_the_commit_leaves_no_trace_and_the_redelivery_prepares_again(
    consuming, failing: str
) -> None:
    service, bus, probe = consuming
    setattr(probe, f"{failing}_failures", 1)
    message = event(1, "counter.bump")

    await bus.publish(message)  # refused once, then redelivered (the fake retries at once)

    assert len(bus.failures) == 1
    assert probe.steps.count("prepare") == 2
    assert await counter(service) == 1
    assert [(r.consumer, r.event_id) for r in await inbox_rows(service)] == [("probe", message.id)]
