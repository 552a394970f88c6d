"""The shared adapter suite: every backend in backends.BACKENDS keeps the port's semantics (port.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from msashop.chassis.bus.port import DeadLetter, EventBus, RpcError, RpcTimeout
from msashop.contracts.envelope import Envelope
from tests.conftest import wait_until
from tests.integration.bus.backends import Backend
from tests.integration.bus.recording import Collector, message

MAX_ATTEMPTS = 3


def needs(backend: Backend, capability: str) -> None:
    if capability in backend.cannot:
        pytest.skip(f"{backend.name}: {backend.cannot[capability]}")


async def connected(backend: Backend) -> EventBus:
    bus = backend.make_bus()
    await bus.connect()
    return bus


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.1)


async def dead_lettered(bus: EventBus, group: str, count: int = 1) -> list[DeadLetter]:
    async def enough() -> bool:
        return len(await bus.dead_letters(group)) >= count

    await eventually(enough)
    return await bus.dead_letters(group)


async def test_a_published_message_reaches_its_subscriber(bus: EventBus) -> None:
    got = Collector()
    await bus.subscribe("contract.ping", "group-a", got)
    sent = message("contract.ping", 1)

    await bus.publish(sent)

    await wait_until(lambda: len(got.received) == 1)
    assert got.received[0] == sent


async def test_each_group_gets_every_message(bus: EventBus) -> None:
    first, second = Collector(), Collector()
    await bus.subscribe("contract.fanout", "group-a", first)
    await bus.subscribe("contract.fanout", "group-b", second)
    sent = [message("contract.fanout", n) for n in range(10)]

    for envelope in sent:
        await bus.publish(envelope)

    await wait_until(lambda: len(first.received) == 10 and len(second.received) == 10)
    assert sorted(first.ids) == sorted(second.ids) == sorted(e.id for e in sent)


async def test_instances_of_one_group_handle_each_message_once(backend: Backend) -> None:
    one, two = await connected(backend), await connected(backend)
    got_one, got_two = Collector(), Collector()
    await one.subscribe("contract.shared", "workers", got_one)
    await two.subscribe("contract.shared", "workers", got_two)
    sent = [message("contract.shared", n) for n in range(40)]

    for envelope in sent:
        await one.publish(envelope)

    await wait_until(lambda: len(got_one.received) + len(got_two.received) >= 40)
    await asyncio.sleep(0.5)  # a message handled twice in the group would arrive here
    handled = got_one.ids + got_two.ids
    assert sorted(handled) == sorted(e.id for e in sent)


async def test_messages_of_one_key_arrive_in_publish_order(bus: EventBus) -> None:
    got = Collector()
    await bus.subscribe("contract.ordered", "group-a", got)
    sent = [message("contract.ordered", n, key=f"order-{n % 5}") for n in range(100)]

    for envelope in sent:
        await bus.publish(envelope)

    await wait_until(lambda: len(got.received) >= 100)
    for key in {e.key for e in sent}:
        assert [e.id for e in got.received if e.key == key] == [e.id for e in sent if e.key == key]


async def test_a_message_whose_consumer_dies_before_acking_goes_to_another_instance(
    backend: Backend,
) -> None:
    needs(backend, "crash")
    doomed, survivor = await connected(backend), await connected(backend)
    started = asyncio.Event()

    async def hang(envelope: Envelope) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes: the instance dies holding the message

    await doomed.subscribe("contract.crash", "workers", hang)
    sent = message("contract.crash")
    await doomed.publish(sent)
    await asyncio.wait_for(started.wait(), timeout=10)
    got = Collector()
    await survivor.subscribe("contract.crash", "workers", got)

    await doomed.close()

    await wait_until(lambda: got.ids == [sent.id], within=30)


async def test_a_poison_message_is_dead_lettered_after_max_attempts_while_others_flow(
    bus: EventBus,
) -> None:
    poison = message("contract.poison", 0)
    attempts: list[str] = []
    good = Collector()

    async def handler(envelope: Envelope) -> None:
        if envelope.id == poison.id:
            attempts.append(envelope.id)
            raise ValueError(f"cannot digest {envelope.data['n']}")
        await good(envelope)

    await bus.subscribe("contract.poison", "eater", handler, max_attempts=MAX_ATTEMPTS)
    others = [message("contract.poison", n) for n in range(1, 6)]

    await bus.publish(poison)
    for envelope in others:
        await bus.publish(envelope)

    await wait_until(lambda: len(good.received) == 5)
    [letter] = await dead_lettered(bus, "eater")
    assert sorted(good.ids) == sorted(e.id for e in others)
    assert letter.group == "eater"
    assert letter.subject == "contract.poison"
    assert letter.envelope == poison
    assert "cannot digest 0" in letter.reason
    assert letter.attempts == MAX_ATTEMPTS
    assert letter.failed_at.tzinfo is not None
    await asyncio.sleep(0.5)  # the group moved on: no further attempt
    assert len(attempts) == MAX_ATTEMPTS
    assert await bus.dead_letters() == [letter]  # listing took nothing off the queue


async def test_a_replayed_dead_letter_reaches_only_the_failed_group_and_leaves_the_queue(
    bus: EventBus,
) -> None:
    broken = True
    fragile, sturdy = Collector(), Collector()

    async def sometimes(envelope: Envelope) -> None:
        if broken:
            raise RuntimeError("bug in the handler")
        await fragile(envelope)

    await bus.subscribe("contract.replay", "fragile", sometimes, max_attempts=MAX_ATTEMPTS)
    await bus.subscribe("contract.replay", "sturdy", sturdy, max_attempts=MAX_ATTEMPTS)
    sent = message("contract.replay")
    await bus.publish(sent)
    [letter] = await dead_lettered(bus, "fragile")
    await wait_until(lambda: sturdy.ids == [sent.id])
    assert await bus.dead_letters("sturdy") == []

    broken = False  # the handler is fixed
    assert await bus.replay_dead_letter(letter.id)

    await wait_until(lambda: fragile.ids == [sent.id])
    await asyncio.sleep(0.5)  # a copy for the other group would arrive here
    assert sturdy.ids == [sent.id]
    assert await bus.dead_letters() == []
    assert not await bus.replay_dead_letter(letter.id)


async def test_a_purged_dead_letter_is_gone_for_good(bus: EventBus) -> None:
    calls: list[str] = []

    async def always_fails(envelope: Envelope) -> None:
        calls.append(envelope.id)
        raise RuntimeError("never works")

    await bus.subscribe("contract.purge", "doomed", always_fails, max_attempts=MAX_ATTEMPTS)
    await bus.publish(message("contract.purge"))
    [letter] = await dead_lettered(bus, "doomed")

    assert await bus.purge_dead_letter(letter.id)

    assert await bus.dead_letters() == []
    assert not await bus.purge_dead_letter(letter.id)
    assert not await bus.replay_dead_letter(letter.id)
    await asyncio.sleep(0.3)
    assert len(calls) == MAX_ATTEMPTS


async def quote(body: dict[str, Any]) -> dict[str, Any]:
    if body["zone"] == "moon":
        raise ValueError("no shipping to the moon")
    return {"price": body["weight"] * 2, "zone": body["zone"]}


async def test_a_request_gets_the_responders_answer(backend: Backend) -> None:
    server, client = await connected(backend), await connected(backend)
    await server.respond("contract.quote", quote)

    # A generous timeout: on a loaded 2-core machine the shared server has answered late.
    answer = await client.request("contract.quote", {"zone": "eu", "weight": 3}, timeout=15)

    assert answer == {"price": 6, "zone": "eu"}


async def test_a_responder_failure_is_an_rpc_error_for_the_caller(backend: Backend) -> None:
    server, client = await connected(backend), await connected(backend)
    await server.respond("contract.quote", quote)

    with pytest.raises(RpcError, match="no shipping to the moon"):
        await client.request("contract.quote", {"zone": "moon", "weight": 1}, timeout=15)


async def test_a_request_nobody_answers_times_out_promptly(bus: EventBus) -> None:
    loop = asyncio.get_running_loop()
    begun = loop.time()

    with pytest.raises(RpcTimeout, match=r"contract\.nobody"):
        await bus.request("contract.nobody", {}, timeout=0.5)

    assert loop.time() - begun < 2


async def test_a_request_answered_too_late_times_out_promptly(backend: Backend) -> None:
    needs(backend, "slow_rpc")
    server, client = await connected(backend), await connected(backend)

    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    await server.respond("contract.slow", slow)
    loop = asyncio.get_running_loop()
    begun = loop.time()

    with pytest.raises(RpcTimeout, match=r"contract\.slow"):
        await client.request("contract.slow", {}, timeout=0.5)

    assert loop.time() - begun < 2


async def publish_retrying(bus: EventBus, envelope: Envelope) -> None:
    """Publish until the broker takes it, as the outbox relay does."""
    for _ in range(300):
        try:
            await bus.publish(envelope)
            return
        except Exception:  # noqa: BLE001 - broker away: try again shortly
            await asyncio.sleep(0.1)
    raise AssertionError(f"could not publish {envelope.id}")


async def test_nothing_is_lost_when_the_broker_restarts_during_publish_and_consume(
    backend: Backend,
) -> None:
    needs(backend, "outage")
    assert backend.outage is not None
    publisher, consumer = await connected(backend), await connected(backend)
    got = Collector()
    await consumer.subscribe("contract.outage", "workers", got)
    sent = [message("contract.outage", n) for n in range(200)]
    halfway = asyncio.Event()

    async def publish_all() -> None:
        for n, envelope in enumerate(sent):
            if n == 60:
                halfway.set()
            await publish_retrying(publisher, envelope)
            await asyncio.sleep(0.005)

    publishing = asyncio.create_task(publish_all())
    await halfway.wait()
    await backend.outage(2.0)
    await asyncio.wait_for(publishing, timeout=60)

    await wait_until(lambda: {e.id for e in sent} <= set(got.ids), within=60)
