"""What the Kafka adapter and the embedded Tansu broker do beyond the shared suite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from msashop.chassis.bus.kafka import KafkaBus
from msashop.contracts.envelope import Envelope
from msashop.supervisor.probes import Prober
from msashop.supervisor.tansu import kafka_answers, tansu_spec
from tests.conftest import free_port, wait_until


def message(subject: str, n: int) -> Envelope:
    return Envelope(source="test", type=subject, key=f"k{n}", data={"n": n})


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}."


@pytest.fixture
async def kafka(tansu_server: str, namespace: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(tansu_server, namespace=namespace)
    await bus.connect()
    yield bus
    await bus.close()


async def test_the_probe_tells_a_kafka_broker_from_a_plain_open_port(tansu_server: str) -> None:
    port = int(tansu_server.rsplit(":", 1)[1])
    plain = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    plain_port = plain.sockets[0].getsockname()[1]
    try:
        assert await kafka_answers("127.0.0.1", port)
        assert not await kafka_answers("127.0.0.1", plain_port)
        assert not await kafka_answers("127.0.0.1", free_port())
    finally:
        plain.close()


def test_the_supervisor_starts_tansu_in_memory_on_the_given_port() -> None:
    spec = tansu_spec(19999, Prober())

    assert spec.name == "kafka"
    assert spec.url == "kafka://127.0.0.1:19999"
    assert spec.argv[1] == "broker"
    assert "tcp://127.0.0.1:19999" in spec.argv
    assert spec.argv[spec.argv.index("--storage-engine") + 1] == "memory://tansu/"


async def test_ping_answers_while_the_broker_is_up(kafka: KafkaBus) -> None:
    await kafka.ping()


async def test_connecting_to_no_broker_fails_and_can_be_retried() -> None:
    bus = KafkaBus(f"kafka://127.0.0.1:{free_port()}")

    with pytest.raises(Exception):  # noqa: B017 - aiokafka's connection error type
        await bus.connect()
    with pytest.raises(RuntimeError, match="not connected"):
        await bus.ping()


def test_a_url_that_is_not_kafka_is_refused() -> None:
    with pytest.raises(ValueError, match="kafka://"):
        KafkaBus("nats://127.0.0.1:4222")


async def test_a_group_resumes_after_its_committed_offset(tansu_server: str, namespace: str) -> None:
    first_run: list[str] = []
    bus = KafkaBus(tansu_server, namespace=namespace)
    await bus.connect()
    await bus.subscribe("resume.event", "workers", lambda e: _append(first_run, e))
    before = [message("resume.event", n) for n in range(5)]
    for envelope in before:
        await bus.publish(envelope)
    await wait_until(lambda: len(first_run) == 5)
    await bus.close()

    second_run: list[str] = []
    again = KafkaBus(tansu_server, namespace=namespace)
    await again.connect()
    after = message("resume.event", 99)
    await again.publish(after)
    await again.subscribe("resume.event", "workers", lambda e: _append(second_run, e))
    try:
        # Tansu hands the partitions over only once the old member's 6 s session has expired.
        await wait_until(lambda: len(second_run) >= 1, within=30)
        await asyncio.sleep(0.5)
        assert second_run == [after.id]  # the five handled before were committed
    finally:
        await again.close()


async def test_namespaces_on_one_broker_never_see_each_other(tansu_server: str, kafka: KafkaBus) -> None:
    other = KafkaBus(tansu_server, namespace=f"other-{uuid.uuid4().hex[:8]}.")
    await other.connect()
    try:
        mine: list[str] = []
        theirs: list[str] = []
        await kafka.subscribe("shared.name", "g", lambda e: _append(mine, e))
        await other.subscribe("shared.name", "g", lambda e: _append(theirs, e))
        sent = message("shared.name", 1)
        await kafka.publish(sent)
        await wait_until(lambda: mine == [sent.id])
        await asyncio.sleep(0.5)
        assert theirs == []
    finally:
        await other.close()


async def test_a_request_whose_caller_gave_up_is_not_answered(tansu_server: str, namespace: str) -> None:
    client = KafkaBus(tansu_server, namespace=namespace)
    await client.connect()
    server = KafkaBus(tansu_server, namespace=namespace)
    await server.connect()
    bodies: list[dict[str, object]] = []

    async def responder(body: dict[str, object]) -> dict[str, object]:
        bodies.append(body)
        return {"ok": True}

    try:
        with pytest.raises(TimeoutError):
            await client.request("late.rpc", {"n": 1}, timeout=0.2)  # nobody listens yet
        await server.respond("late.rpc", responder)
        assert await client.request("late.rpc", {"n": 2}, timeout=10) == {"ok": True}
        assert bodies == [{"n": 2}]  # the expired request was skipped, not answered
    finally:
        await server.close()
        await client.close()


async def test_closing_an_idle_bus_is_quick(kafka: KafkaBus) -> None:
    got: list[str] = []
    await kafka.subscribe("idle.event", "g", lambda e: _append(got, e))
    await kafka.publish(message("idle.event", 1))
    await wait_until(lambda: len(got) == 1)  # joined: a close during the join waits it out
    begun = asyncio.get_running_loop().time()

    await kafka.close()

    assert asyncio.get_running_loop().time() - begun < 2


async def _append(into: list[str], envelope: Envelope) -> None:
    into.append(envelope.id)
