"""The machine's RabbitMQ as a backend of the shared suite, behind a private TCP proxy.

Each test gets its own exchange and queue names (a uuid namespace), deleted afterwards. An
outage is the proxy going away (listener closed, every connection cut) for the given seconds:
the client sees the broker vanish and come back on the same address, while the shared server
and everyone else using it carry on. The queues stay on the broker during the outage, so this
exercises reconnecting, re-declaring (exclusive and auto-delete queues are gone) and
re-consuming, and confirms around a cut; a RabbitMQ node restart itself is not exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator

from tests.conftest import free_port, unavailable
from tests.integration.bus.backends import Backend, unique

RABBITMQ_URL = os.environ.get("MSASHOP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
BROKER = ("127.0.0.1", 5672)


class TcpProxy:
    """Forwards a local port to the broker; `outage()` cuts it off for a while."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def outage(self, seconds: float) -> None:
        await self.stop()
        await asyncio.sleep(seconds)
        await self.start()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


def _listed(kind: str) -> list[str]:
    result = subprocess.run(
        ["rabbitmqctl", f"list_{kind}", "name", "-q", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


async def delete_namespace(namespace: str) -> None:
    """Delete every queue and exchange whose name starts with `namespace`."""
    import aio_pika

    queues, exchanges = await asyncio.gather(
        asyncio.to_thread(_listed, "queues"), asyncio.to_thread(_listed, "exchanges")
    )
    async with await aio_pika.connect(RABBITMQ_URL) as connection:
        channel = await connection.channel()
        for name in queues:
            if name.startswith(namespace):
                await channel.queue_delete(name)
        for name in exchanges:
            if name.startswith(namespace):
                await channel.exchange_delete(name)


@contextlib.asynccontextmanager
async def open_machine_rabbitmq() -> AsyncIterator[Backend]:
    import aio_pika

    from msashop.chassis.bus.rabbitmq import RabbitMqBus

    try:
        probe = await aio_pika.connect(RABBITMQ_URL, timeout=3)
    except Exception as exc:  # any connection failure means: not available here
        unavailable(f"no RabbitMQ at {RABBITMQ_URL}: {exc}")
        raise
    await probe.close()
    proxy = TcpProxy(*BROKER)
    await proxy.start()
    namespace = unique("test-")
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    try:
        yield Backend(
            "rabbitmq",
            lambda: RabbitMqBus(
                url, exchange=f"{namespace}.events", namespace=namespace, connection_name=namespace
            ),
            outage=proxy.outage,
        )
    finally:
        await proxy.stop()
        await delete_namespace(namespace)
