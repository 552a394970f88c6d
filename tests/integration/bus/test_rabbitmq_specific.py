"""What the RabbitMQ adapter does beyond the shared suite: message properties, backoff through
the retry queues, and recovery after the broker itself closes the connection."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from msashop.chassis.bus.rabbitmq import RabbitMqBus
from msashop.contracts.envelope import Envelope
from tests.conftest import unavailable, wait_until
from tests.integration.bus.backends import unique
from tests.integration.bus.rabbitmq_backend import RABBITMQ_URL, delete_namespace


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    import aio_pika

    try:
        probe = await aio_pika.connect(RABBITMQ_URL, timeout=3)
    except Exception as exc:  # any connection failure means: not available here
        unavailable(f"no RabbitMQ at {RABBITMQ_URL}: {exc}")
        raise
    await probe.close()
    name = unique("test-")
    yield name
    await delete_namespace(name)


@pytest.fixture
async def bus(namespace: str) -> AsyncIterator[RabbitMqBus]:
    connected = make_bus(namespace)
    await connected.connect()
    yield connected
    await connected.close()


def make_bus(namespace: str) -> RabbitMqBus:
    return RabbitMqBus(
        RABBITMQ_URL, exchange=f"{namespace}.events", namespace=namespace, connection_name=namespace
    )


def message(subject: str, n: int = 0) -> Envelope:
    return Envelope(source="test", type=subject, key=f"k{n}", data={"n": n})


def close_connections_named(name: str) -> int:
    """Have the broker close our connections (found by client-provided name), as a node going
    down would, without touching anyone else's."""
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if f'{{"connection_name","{name}"}}' in line]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "test: broker-side close"],
            capture_output=True,
            timeout=60,
            check=True,
        )
    return len(pids)


async def test_an_event_is_published_persistent_with_its_id_and_key(bus: RabbitMqBus, namespace: str) -> None:
    channel = await bus._connected().channel()
    queue = await channel.declare_queue(f"{namespace}.probe", durable=True)
    await queue.bind(f"{namespace}.events", routing_key="rmq.props")
    sent = message("rmq.props", 7)

    await bus.publish(sent)

    received = await queue.get(timeout=5)
    await received.ack()
    assert received.delivery_mode == 2  # persistent
    assert received.message_id == sent.id
    assert received.headers["key"] == sent.key
    assert received.routing_key == "rmq.props"
    assert Envelope.from_bytes(received.body) == sent


async def test_a_refused_message_comes_back_after_the_growing_backoff(bus: RabbitMqBus) -> None:
    loop = asyncio.get_running_loop()
    seen: list[float] = []

    async def refuse_twice(envelope: Envelope) -> None:
        seen.append(loop.time())
        if len(seen) < 3:
            raise RuntimeError("not yet")

    await bus.subscribe("rmq.backoff", "slow", refuse_twice, max_attempts=5)
    await bus.publish(message("rmq.backoff"))

    await wait_until(lambda: len(seen) == 3, within=15)
    first_wait, second_wait = seen[1] - seen[0], seen[2] - seen[1]
    assert 0.45 <= first_wait < 2.0  # redelivery_delay(1) = 0.5 s
    assert 0.95 <= second_wait < 3.0  # redelivery_delay(2) = 1 s
    assert await bus.dead_letters("slow") == []


async def test_consumers_and_rpc_recover_after_the_broker_closes_the_connection(
    bus: RabbitMqBus, namespace: str
) -> None:
    got: list[str] = []

    async def collect(envelope: Envelope) -> None:
        got.append(envelope.id)

    async def double(body: dict[str, Any]) -> dict[str, Any]:
        return {"twice": body["n"] * 2}

    await bus.subscribe("rmq.recover", "workers", collect)
    await bus.respond("rmq.double", double)
    assert await bus.request("rmq.double", {"n": 1}, timeout=5) == {"twice": 2}

    closed = await asyncio.to_thread(close_connections_named, namespace)
    assert closed == 1
    await asyncio.sleep(0.5)

    async def request_until_answered() -> dict[str, Any]:
        for _ in range(40):
            try:
                return await bus.request("rmq.double", {"n": 21}, timeout=1)
            except Exception:  # noqa: BLE001 - still reconnecting
                await asyncio.sleep(0.25)
        raise AssertionError("no RPC answer after the reconnect")

    # The exclusive reply queue and the auto-delete request queue died with the connection:
    # an answer proves both were declared again.
    assert await request_until_answered() == {"twice": 42}
    sent = message("rmq.recover")
    await bus.publish(sent)
    await wait_until(lambda: got == [sent.id], within=15)
    await bus.ping()


async def test_ping_fails_when_the_bus_is_not_connected(namespace: str) -> None:
    bus = make_bus(namespace)
    with pytest.raises(ConnectionError):
        await bus.ping()
    await bus.connect()
    await bus.ping()
    await bus.close()
    with pytest.raises(ConnectionError):
        await bus.ping()


async def test_a_retry_whose_queue_was_deleted_is_not_lost(bus: RabbitMqBus, namespace: str) -> None:
    calls: list[int] = []

    async def fails_twice(envelope: Envelope) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("not yet")

    await bus.subscribe("rmq.lost", "workers", fails_twice)
    await bus.publish(message("rmq.lost", 1))
    await wait_until(lambda: len(calls) == 3, within=15)
    # Someone deletes the 0.5 s retry queue this bus declared and remembers.
    channel = await bus._connected().channel()
    await channel.queue_delete(f"{namespace}.workers.rmq.lost.retry.500")
    calls.clear()

    await bus.publish(message("rmq.lost", 2))

    await wait_until(lambda: len(calls) == 3, within=15)
