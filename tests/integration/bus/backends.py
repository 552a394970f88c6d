"""The brokers the shared adapter suite (test_bus_contract.py) runs against.

To add one, append a `BackendEntry(name, open)` to `BACKENDS`. `open()` is an async context
manager (write it with `@contextlib.asynccontextmanager`) that:

- finds or starts the broker, calling `tests.conftest.unavailable(reason)` when it cannot;
- yields a `Backend` whose `make_bus()` returns a new, *unconnected* bus on a namespace unique to
  this test (stream / prefix / exchange / queue / topic names with a uuid); every call is another
  "process" on the same namespace. The suite connects the buses and closes them all itself;
- `outage(seconds)`, when it can, makes the broker unreachable for about `seconds` and returns once
  it is back (stop the server, start it again on the same port and data); otherwise leave it None
  and put the reason in `cannot["outage"]`;
- `cannot` maps a capability the suite needs to the reason this backend lacks it:
  "outage" (above), "crash" (a consumer dying mid-handler), "slow_rpc" (a responder slower
  than the caller's timeout). The tests that need it skip with that reason;
- on exit, deletes whatever the namespace left on a shared server.

Import the adapter inside `open()`: a missing adapter module must not break collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from msashop.chassis.bus.port import EventBus
from tests.conftest import NATS_SERVER, free_port, unavailable, wait_for_port

MACHINE_NATS = "nats://127.0.0.1:4222"


@dataclass
class Backend:
    name: str
    make_bus: Callable[[], EventBus]
    outage: Callable[[float], Awaitable[None]] | None = None
    cannot: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendEntry:
    name: str
    open: Callable[[], contextlib.AbstractAsyncContextManager[Backend]]


def unique(kind: str) -> str:
    return f"{kind}{uuid.uuid4().hex[:12]}"


class NatsServerProcess:
    """A private nats-server with JetStream that can be stopped and started on the same port and store."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(NATS_SERVER), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    async def outage(self, seconds: float) -> None:
        await asyncio.to_thread(self.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.start)


@contextlib.asynccontextmanager
async def open_private_nats() -> AsyncIterator[Backend]:
    from msashop.chassis.bus.nats import NatsJetStreamBus

    if not NATS_SERVER.exists():
        unavailable(f"no nats-server binary at {NATS_SERVER}")
    with tempfile.TemporaryDirectory(prefix="msashop-nats-") as store:
        server = NatsServerProcess(Path(store))
        server.start()
        try:
            yield Backend("nats", lambda: NatsJetStreamBus(server.url), outage=server.outage)
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def open_machine_nats() -> AsyncIterator[Backend]:
    import nats
    from nats.js.errors import NotFoundError

    from msashop.chassis.bus.nats import NatsJetStreamBus

    try:
        admin = await nats.connect(MACHINE_NATS, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:  # any connection failure means: not available here
        unavailable(f"no NATS at {MACHINE_NATS}: {exc}")
        raise
    stream, prefix = unique("TEST_").upper(), unique("test") + "."
    try:
        yield Backend(
            "nats-system",
            lambda: NatsJetStreamBus(MACHINE_NATS, stream=stream, prefix=prefix),
            cannot={"outage": "the machine's nats-server is shared: the suite does not stop it"},
        )
    finally:
        for name in (stream, f"{stream}_DLQ"):
            with contextlib.suppress(NotFoundError):
                await admin.jetstream().delete_stream(name)
        await admin.close()


@contextlib.asynccontextmanager
async def open_memory() -> AsyncIterator[Backend]:
    from msashop.chassis.bus.memory import InMemoryBus

    shared = InMemoryBus()  # one "broker": every instance of this test talks to it
    inline = "the in-memory bus delivers inline inside publish"
    yield Backend(
        "memory",
        lambda: shared,
        cannot={
            "outage": "there is no broker to stop",
            "crash": f"{inline}: no consumer process can die mid-handler",
            "slow_rpc": "the in-memory bus calls the responder inline, without a timeout",
        },
    )


@contextlib.asynccontextmanager
async def open_rabbitmq() -> AsyncIterator[Backend]:
    # The machine's RabbitMQ behind a proxy that can cut it off (see rabbitmq_backend.py).
    from tests.integration.bus.rabbitmq_backend import open_machine_rabbitmq

    async with open_machine_rabbitmq() as backend:
        yield backend


@contextlib.asynccontextmanager
async def open_kafka() -> AsyncIterator[Backend]:
    # A private Tansu broker behind a proxy that can cut it off (see kafka_backend.py).
    from tests.integration.bus.kafka_backend import open_tansu

    async with open_tansu() as backend:
        yield backend


BACKENDS: list[BackendEntry] = [
    BackendEntry("memory", open_memory),
    BackendEntry("nats", open_private_nats),
    BackendEntry("nats-system", open_machine_nats),
    BackendEntry("rabbitmq", open_rabbitmq),
    BackendEntry("kafka", open_kafka),
]
