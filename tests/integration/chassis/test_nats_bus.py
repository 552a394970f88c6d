"""What only the NATS JetStream adapter does (the shared suite in tests/integration/bus covers the
port on nats and the machine's nats-server): hand-off latency, redelivery, Nats-Msg-Id dedupe,
prompt close, replay routing by subject."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from msashop.chassis.bus.nats import NatsJetStreamBus, subject_matches
from msashop.contracts.envelope import Envelope
from tests.conftest import wait_until
from tests.integration.bus.recording import Collector, message

pytestmark = pytest.mark.nats

MACHINE_NATS = os.environ.get("MSASHOP_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
async def bus_factory(nats_server: str) -> AsyncIterator[Callable[[], NatsJetStreamBus]]:
    """Connected buses on the private server (a new one per call: another process, in effect)."""
    buses: list[NatsJetStreamBus] = []

    def connect() -> NatsJetStreamBus:
        bus = NatsJetStreamBus(nats_server)
        buses.append(bus)
        return bus

    yield connect
    for bus in buses:
        await bus.close()


@pytest.fixture
async def bus(bus_factory: Callable[[], NatsJetStreamBus]) -> NatsJetStreamBus:
    bus = bus_factory()
    await bus.connect()
    return bus


async def test_an_idle_consumer_gets_a_new_message_at_once(bus: NatsJetStreamBus) -> None:
    got = Collector()
    await bus.subscribe("test.idle", "group-a", got)
    await asyncio.sleep(0.3)  # the consumer is now waiting in a fetch with nothing to read
    loop = asyncio.get_running_loop()
    sent_at = loop.time()

    await bus.publish(message("test.idle", 1))

    await wait_until(lambda: len(got.received) == 1, within=5)
    # Well under the consumer's 1 s fetch window: no polling delay on the hand-off.
    assert loop.time() - sent_at < 0.5


async def test_a_refused_message_is_redelivered_and_then_handled(bus: NatsJetStreamBus) -> None:
    attempts: list[str] = []
    handled: list[str] = []

    async def flaky(envelope: Envelope) -> None:
        attempts.append(envelope.id)
        if len(attempts) == 1:
            raise RuntimeError("downstream not ready yet")
        handled.append(envelope.id)

    await bus.subscribe("test.flaky", "group-a", flaky)
    sent = message("test.flaky")

    await bus.publish(sent)

    await wait_until(lambda: handled == [sent.id], within=10)
    assert attempts == [sent.id, sent.id]


async def test_the_same_envelope_published_twice_is_delivered_once(bus: NatsJetStreamBus) -> None:
    got = Collector()
    await bus.subscribe("test.dedupe", "group-a", got)
    twice, marker = message("test.dedupe", 1), message("test.dedupe", 2)

    await bus.publish(twice)
    await bus.publish(twice)  # e.g. the relay crashed before marking the row published
    await bus.publish(marker)

    # Delivery is in order, so once the marker is in, a duplicate would have been too.
    await wait_until(lambda: marker.id in got.ids)
    assert got.ids == [twice.id, marker.id]


async def test_close_is_prompt_and_lets_the_message_in_hand_finish(
    bus_factory: Callable[[], NatsJetStreamBus],
) -> None:
    bus = bus_factory()
    await bus.connect()
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(envelope: Envelope) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    await bus.subscribe("test.slow", "group-a", slow)
    await bus.subscribe("test.idle", "group-a", Collector())
    await bus.publish(message("test.slow"))
    await asyncio.wait_for(started.wait(), timeout=5)

    loop = asyncio.get_running_loop()
    begun = loop.time()
    await asyncio.wait_for(bus.close(), timeout=10)

    assert loop.time() - begun < 3, "a service must stop well within the supervisor's grace period"
    assert finished.is_set()


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("order.created", "order.created", True),
        ("order.*", "order.created", True),
        ("order.*", "order.created.v2", False),
        ("order.>", "order.created.v2", True),
        ("order.>", "order", False),
        ("payment.*", "order.created", False),
    ],
)
def test_replays_are_routed_by_nats_subject_matching(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


async def test_a_dead_letter_replayed_from_another_process_reaches_the_running_consumer(
    bus_factory: Callable[[], NatsJetStreamBus],
) -> None:
    service, cli = bus_factory(), bus_factory()  # e.g. `msashop dlq replay` in its own process
    await service.connect()
    await cli.connect()
    broken = True
    handled: list[str] = []

    async def handler(envelope: Envelope) -> None:
        if broken:
            raise RuntimeError("not yet")
        handled.append(envelope.id)

    await service.subscribe("test.cli", "group-a", handler, max_attempts=2)
    sent = message("test.cli")
    await service.publish(sent)
    await wait_until_async(lambda: cli.dead_letters("group-a"), within=10)
    [letter] = await cli.dead_letters("group-a")

    broken = False
    assert await cli.replay_dead_letter(letter.id)

    await wait_until(lambda: handled == [sent.id])
    assert await cli.dead_letters() == []


async def test_a_replayed_message_that_fails_again_goes_back_to_the_dead_letters(
    bus: NatsJetStreamBus,
) -> None:
    async def always_fails(envelope: Envelope) -> None:
        raise RuntimeError("still broken")

    await bus.subscribe("test.again", "group-a", always_fails, max_attempts=2)
    sent = message("test.again")
    await bus.publish(sent)
    await wait_until_async(lambda: bus.dead_letters(), within=10)
    [first] = await bus.dead_letters()

    assert await bus.replay_dead_letter(first.id)

    await wait_until_async(lambda: bus.dead_letters(), within=10)
    [second] = await bus.dead_letters()
    assert second.id != first.id
    assert (second.envelope, second.group, second.attempts) == (sent, "group-a", 2)


async def wait_until_async(fetch: Callable[[], Awaitable[list[Any]]], within: float) -> None:
    """Poll until `fetch()` returns a non-empty list."""
    deadline = asyncio.get_running_loop().time() + within
    while not await fetch():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing within {within} s")
        await asyncio.sleep(0.1)
