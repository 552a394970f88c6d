"""Each adapter's ping() is a real round trip to its broker: it answers while the broker does,
fails within the readiness timeout when the broker goes silent (connections open, nothing
answered, as a SIGSTOPped server) or away (connections cut, the port refusing), and answers
again on its own once the broker is back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from msashop.chassis.bus.port import EventBus
from msashop.chassis.health import HealthChecker
from tests.conftest import unavailable
from tests.integration.bus.rabbitmq_backend import BROKER, RABBITMQ_URL, TcpProxy, delete_namespace

TIMEOUT = 2.0
RECOVERY_SECONDS = 30.0


class FreezableProxy(TcpProxy):
    """The suite's TCP proxy that can also freeze: connections stay open, no byte goes through."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:  # type: ignore[override]
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


async def readiness(bus: EventBus) -> tuple[str, float]:
    """The broker check as /ready runs it: its status and how long it took."""
    checker = HealthChecker(timeout=TIMEOUT)
    checker.add("broker", bus.ping)
    started = time.monotonic()
    report = await checker.run()
    return report.checks["broker"].status, time.monotonic() - started


async def until_up(bus: EventBus) -> float:
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        if (await readiness(bus))[0] == "up":
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"ping did not answer again {RECOVERY_SECONDS} s after the broker came back")


async def echo(body: dict[str, Any]) -> dict[str, Any]:
    return body


async def follows_the_broker(bus: EventBus, proxy: FreezableProxy) -> None:
    await bus.connect()
    await bus.respond("ping.echo", echo)
    assert (await readiness(bus))[0] == "up"

    proxy.freeze()  # silent: every byte held
    for _ in range(2):  # and again, while the first ping's answer is still owed
        status, took = await readiness(bus)
        assert status == "down" and took < TIMEOUT + 0.5, (status, took)
    proxy.thaw()
    await until_up(bus)
    # "up" is true: the bus carries a round trip now (a ping whose late answer broke the
    # client's reader, as a timed-out NATS flush does, would say up and carry nothing).
    assert await bus.request("ping.echo", {"n": 1}, timeout=5) == {"n": 1}

    await proxy.stop()  # gone: connections cut, the port refusing
    await asyncio.sleep(0.2)
    status, took = await readiness(bus)
    assert status == "down" and took < TIMEOUT + 0.5, (status, took)
    await proxy.start()
    await until_up(bus)


@contextlib.asynccontextmanager
async def proxied(host: str, port: int) -> AsyncIterator[FreezableProxy]:
    proxy = FreezableProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        await proxy.stop()


async def test_nats_ping_is_a_round_trip_through_the_server() -> None:
    import nats

    from msashop.chassis.bus.nats import NatsJetStreamBus

    try:
        probe = await nats.connect("nats://127.0.0.1:4222", connect_timeout=2, allow_reconnect=False)
    except Exception as exc:  # any connection failure means: not available here
        unavailable(f"no NATS at 127.0.0.1:4222: {exc}")
        raise
    stream = f"TEST_PING_{uuid.uuid4().hex[:8].upper()}"
    async with proxied("127.0.0.1", 4222) as proxy:
        bus = NatsJetStreamBus(f"nats://127.0.0.1:{proxy.port}", stream=stream, prefix=f"{stream.lower()}.")
        try:
            await follows_the_broker(bus, proxy)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.close(), timeout=10)
            for name in (stream, f"{stream}_DLQ"):
                with contextlib.suppress(Exception):
                    await probe.jetstream().delete_stream(name)
            await probe.close()


async def test_rabbitmq_ping_is_a_round_trip_through_the_server() -> None:
    from msashop.chassis.bus.rabbitmq import RabbitMqBus

    namespace = f"test{uuid.uuid4().hex[:12]}"
    async with proxied(*BROKER) as proxy:
        url = RABBITMQ_URL.replace(f"{BROKER[0]}:{BROKER[1]}", f"127.0.0.1:{proxy.port}")
        bus = RabbitMqBus(url, namespace=namespace)
        try:
            await bus.connect()
        except OSError as exc:
            unavailable(f"no RabbitMQ at {RABBITMQ_URL}: {exc}")
        try:
            await follows_the_broker(bus, proxy)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.close(), timeout=10)
            await delete_namespace(namespace)


async def test_kafka_ping_is_a_metadata_round_trip() -> None:
    from msashop.chassis.bus.kafka import KafkaBus
    from tests.integration.bus.kafka_backend import running_tansu

    proxy = FreezableProxy("127.0.0.1", 0)
    async with running_tansu(advertised_port=proxy.port) as server:  # clients only see the proxy
        proxy.target = ("127.0.0.1", server.port)
        await proxy.start()
        bus = KafkaBus(server.url, namespace=f"test-{uuid.uuid4().hex[:12]}.")
        try:
            await follows_the_broker(bus, proxy)
        finally:
            proxy.thaw()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.close(), timeout=10)
            await proxy.stop()


async def test_a_bus_never_connected_is_down_at_once() -> None:
    from msashop.chassis.bus.nats import NatsJetStreamBus

    status, took = await readiness(NatsJetStreamBus("nats://127.0.0.1:1"))
    assert status == "down" and took < 0.5
