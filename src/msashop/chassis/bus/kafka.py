"""Kafka adapter (aiokafka). Every topic name starts with the namespace, so installations and
test runs sharing a broker never meet:

- `<ns><subject>`: the events, a few partitions, record key = `envelope.key` (per-key order).
- `<ns>replay.<group>`: dead letters replayed to that group only; its consumer reads it too.
- `<ns>dlq`: every group's dead letters (one partition: oldest first); headers say why.
- `<ns>dlq-done`: ids of dead letters replayed or purged, since Kafka cannot delete one record.
- `<ns>rpc.<subject>`: requests; `<ns>reply.<uuid>`: this process's replies.

Kafka has no nack: a refused message is retried in process after `redelivery_delay`, holding
its partition (which keeps per-key order); after `max_attempts` it goes to the DLQ and its
offset is committed. Offsets are committed only after the handler returns (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from msashop.chassis.bus.kafka_records import (
    CONSUMER_OPTIONS,
    Record,
    dead_letter_headers,
    dead_letter_of,
    headers_of,
    read_to_end,
    topic_part,
)
from msashop.chassis.bus.port import (
    DEFAULT_MAX_ATTEMPTS,
    DeadLetter,
    MessageHandler,
    Responder,
    RpcError,
    RpcTimeout,
    redelivery_delay,
)
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

NAMESPACE = "msashop."
PARTITIONS = 3
CLOSE_GRACE_SECONDS = 4.0
TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS
Process = Callable[[Record], Awaitable[bool]]


@dataclass
class _Group:
    name: str
    topics: dict[str, str] = field(default_factory=dict)  # topic -> subject
    handlers: dict[str, tuple[MessageHandler, int]] = field(default_factory=dict)
    consumer: AIOKafkaConsumer | None = None


class KafkaBus:
    def __init__(self, url: str, *, namespace: str = NAMESPACE, partitions: int = PARTITIONS) -> None:
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.hostname:
            raise ValueError(f"not a kafka://host:port URL: {url!r}")
        self.bootstrap = f"{parts.hostname}:{parts.port or 9092}"
        self.namespace = topic_part(namespace)
        self.partitions = partitions
        self.dlq_topic = f"{self.namespace}dlq"
        self.done_topic = f"{self.namespace}dlq-done"
        self._reply_topic = f"{self.namespace}reply.{uuid.uuid4().hex}"
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self._groups: dict[str, _Group] = {}
        self._topics: set[str] = set()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()

    def topic(self, subject: str) -> str:
        return self.namespace + topic_part(subject)

    async def connect(self) -> None:
        self._closing.clear()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0)
        try:
            await admin.start()
            await producer.start()
        except Exception:
            await producer.stop()
            await admin.close()
            raise
        self._admin, self._producer = admin, producer
        await self._ensure_topics(self.dlq_topic, self.done_topic, self._reply_topic, partitions=1)
        replies = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, **CONSUMER_OPTIONS)
        await replies.start()
        replies.assign([TopicPartition(self._reply_topic, 0)])
        self._start(replies, self._on_reply, commit=False)

    async def close(self) -> None:
        # Consumers finish the message in hand; only one stuck in a handler is cancelled.
        self._closing.set()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._consumers.clear()
        self._groups.clear()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._admin.delete_topics([self._reply_topic]), 2)
            await self._admin.close()
        if self._producer is not None:
            await self._producer.stop()
        self._admin = self._producer = None

    async def ping(self) -> None:
        await asyncio.wait_for(self._producer_or_fail().client.fetch_all_metadata(), 3)

    async def publish(self, envelope: Envelope) -> None:
        topic = self.topic(envelope.type)
        await self._ensure_topics(topic)
        await self._send(topic, envelope.to_bytes(), key=envelope.key, headers={"id": envelope.id})

    async def subscribe(
        self,
        subject: str,
        group: str,
        handler: MessageHandler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group(group)
            state.topics[f"{self.namespace}replay.{topic_part(group)}"] = ""
        state.topics[self.topic(subject)] = subject
        state.handlers[subject] = (handler, max_attempts)
        await self._ensure_topics(*state.topics)
        if state.consumer is None:
            # Subscribing after start lets start() return at once; the join runs in background.
            state.consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.namespace + group,
                **CONSUMER_OPTIONS,
            )
            await state.consumer.start()
            self._start(state.consumer, lambda record: self._deliver(state, record), commit=True)
        state.consumer.subscribe(topics=list(state.topics))

    async def respond(self, subject: str, responder: Responder) -> None:
        topic = f"{self.namespace}rpc.{topic_part(subject)}"
        await self._ensure_topics(topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=topic, **CONSUMER_OPTIONS)
        await consumer.start()
        consumer.subscribe(topics=[topic])

        async def answer(record: Record) -> bool:
            await self._answer(subject, responder, record)
            return True

        self._start(consumer, answer, commit=True)

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        topic = f"{self.namespace}rpc.{topic_part(subject)}"
        await self._ensure_topics(topic)
        correlation_id = uuid.uuid4().hex
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = reply
        headers = {
            "correlation_id": correlation_id,
            "reply_to": self._reply_topic,
            "deadline": str(time.time() + timeout),
        }
        try:
            await self._send(topic, json.dumps(body).encode(), key=correlation_id, headers=headers)
            answer = await asyncio.wait_for(reply, timeout)
        except TimeoutError as exc:
            raise RpcTimeout(f"no reply on {subject} within {timeout} s") from exc
        finally:
            self._pending.pop(correlation_id, None)
        if "error" in answer:
            raise RpcError(f"{subject}: {answer['error']}")
        return dict(answer["result"])

    async def dead_letters(self, group: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        done = {record.value.decode() for record in await read_to_end(self.bootstrap, self.done_topic)}
        letters: list[DeadLetter] = []
        for record in await read_to_end(self.bootstrap, self.dlq_topic):
            letter = dead_letter_of(record)
            if letter is None or letter.id in done or (group is not None and letter.group != group):
                continue
            letters.append(letter)
        return letters[:limit]

    async def replay_dead_letter(self, dead_letter_id: str) -> bool:
        letter = await self._find_letter(dead_letter_id)
        if letter is None:
            return False
        topic = f"{self.namespace}replay.{topic_part(letter.group)}"
        await self._ensure_topics(topic)
        payload = letter.envelope.to_bytes()
        await self._send(topic, payload, key=letter.envelope.key, headers={"subject": letter.subject})
        await self._send(self.done_topic, dead_letter_id.encode(), key=dead_letter_id)
        return True

    async def purge_dead_letter(self, dead_letter_id: str) -> bool:
        if await self._find_letter(dead_letter_id) is None:
            return False
        await self._send(self.done_topic, dead_letter_id.encode(), key=dead_letter_id)
        return True

    # --- consuming -------------------------------------------------------------------------

    def _start(self, consumer: AIOKafkaConsumer, process: Process, *, commit: bool) -> None:
        self._consumers.append(consumer)
        self._tasks.append(asyncio.create_task(self._consume(consumer, process, commit)))

    async def _consume(self, consumer: AIOKafkaConsumer, process: Process, commit: bool) -> None:
        while not self._closing.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=200)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker away: the client reconnects, we wait
                log.warning("bus.fetch_failed", error=str(exc))
                await self._pause(1.0)
                continue
            # Partitions run side by side; within one, records go strictly in order.
            done = await asyncio.gather(*(self._partition(records, process) for records in batch.values()))
            offsets = {tp: last + 1 for tp, last in zip(batch, done, strict=True) if last is not None}
            if commit and offsets:
                # One commit for the whole fetch: a commit per partition cost a round trip each.
                try:
                    await consumer.commit(offsets)
                except Exception as exc:  # noqa: BLE001 - rebalanced away: the new owner redelivers
                    log.warning("bus.commit_failed", error=str(exc))

    async def _partition(self, records: list[Record], process: Process) -> int | None:
        """Handle one partition's records in order; the offset of the last one handled."""
        handled: int | None = None
        for record in records:
            if self._closing.is_set() or not await process(record):
                break  # left uncommitted: redelivered to whoever consumes next
            handled = record.offset
        return handled

    async def _deliver(self, group: _Group, record: Record) -> bool:
        """Handle one record for `group`; False if closing interrupted its retries."""
        subject = group.topics.get(record.topic) or headers_of(record).get("subject", "")
        try:
            envelope = Envelope.from_bytes(record.value)
        except ValidationError as exc:
            log.error("bus.malformed_message", group=group.name, topic=record.topic, error=str(exc))
            return True
        entry = group.handlers.get(subject)
        if entry is None:
            log.warning("bus.no_handler", group=group.name, subject=subject, event_id=envelope.id)
            return True
        handler, max_attempts = entry
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(envelope)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any handler failure means: redeliver later
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "bus.handler_failed",
                    group=group.name,
                    subject=subject,
                    event_id=envelope.id,
                    attempt=attempt,
                    error=reason,
                )
            if attempt >= max_attempts:
                await self._dead_letter(group.name, subject, envelope, reason, attempt)
                return True
            if not await self._pause(redelivery_delay(attempt)):
                return False

    async def _dead_letter(
        self, group: str, subject: str, envelope: Envelope, reason: str, attempts: int
    ) -> None:
        headers = dead_letter_headers(group, subject, reason, attempts)
        await self._send(self.dlq_topic, envelope.to_bytes(), key=envelope.key, headers=headers)
        log.error("bus.dead_lettered", group=group, subject=subject, event_id=envelope.id)

    async def _answer(self, subject: str, responder: Responder, record: Record) -> None:
        headers = headers_of(record)
        reply_to, correlation_id = headers.get("reply_to"), headers.get("correlation_id")
        if not reply_to or not correlation_id or float(headers.get("deadline", "inf")) < time.time():
            return  # nobody waits for this answer any more
        try:
            answer: dict[str, Any] = {"result": await responder(json.loads(record.value))}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the caller gets the error as an RpcError
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            reply_headers = {"correlation_id": correlation_id}
            await self._send(reply_to, json.dumps(answer).encode(), key=correlation_id, headers=reply_headers)
        except Exception as exc:  # noqa: BLE001 - the caller times out; the next request may pass
            log.warning("bus.reply_failed", subject=subject, error=str(exc))

    async def _on_reply(self, record: Record) -> bool:
        waiter = self._pending.get(headers_of(record).get("correlation_id", ""))
        if waiter is not None and not waiter.done():
            waiter.set_result(json.loads(record.value))
        return True

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless the bus closes first; True if it is still open."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)
        return not self._closing.is_set()

    # --- dead-letter reading ---------------------------------------------------------------

    async def _find_letter(self, dead_letter_id: str) -> DeadLetter | None:
        return next((d for d in await self.dead_letters(limit=1_000_000) if d.id == dead_letter_id), None)

    # --- producing and topics --------------------------------------------------------------

    async def _send(
        self, topic: str, value: bytes, *, key: str, headers: dict[str, str] | None = None
    ) -> None:
        encoded = [(name, text.encode()) for name, text in (headers or {}).items()]
        await self._producer_or_fail().send_and_wait(topic, value, key=key.encode(), headers=encoded)

    async def _ensure_topics(self, *topics: str, partitions: int | None = None) -> None:
        missing = [t for t in topics if t not in self._topics]
        if not missing:
            return
        if self._admin is None:
            raise RuntimeError("bus is not connected")
        count = partitions or self.partitions
        response = await self._admin.create_topics([NewTopic(t, count, 1) for t in missing])
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_EXISTS):
                raise RuntimeError(f"cannot create Kafka topic {name}: error {code}")
        self._topics.update(missing)

    def _producer_or_fail(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("bus is not connected")
        return self._producer
