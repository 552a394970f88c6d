"""RabbitMQ adapter (aio-pika): a topic exchange, a durable queue per (group, subject), a DLX.

Layout, for exchange `events` and namespace `msashop` (both configurable so tests stay apart):
- events (topic, durable): every event, routing key = subject.
- msashop.<group>.<subject> (durable, single active consumer): a group's queue. Single active
  consumer keeps per-key order across a group's instances: one instance consumes a queue, the
  others stand by and take over when it goes away (like a Kafka partition); the active one
  handles the queue's messages one at a time.
- msashop.<group>.<subject>.retry.<ms> (durable, queue TTL): a refused message waits there for
  `redelivery_delay(attempt)` and dead-letters back to the group's queue. One queue per delay,
  not a per-message expiration, because RabbitMQ only expires messages at a queue's head.
- events.dlx (direct, durable) -> msashop.dlq.<group> (durable): messages refused max_attempts
  times, with headers reason, attempts, group, subject, failed_at, x-dead-letter-id.
- msashop.rpc.<subject> (auto-delete): requests; replies go to each client's exclusive queue.
The robust connection reconnects and redeclares all of it, consumers included, after the broker
comes back. Publishes wait for the broker's confirm.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import ValidationError

from msashop.chassis.bus.port import (
    DEFAULT_MAX_ATTEMPTS,
    DeadLetter,
    MessageHandler,
    Responder,
    group_by_key,
    redelivery_delay,
)
from msashop.chassis.bus.rabbitmq_rpc import PUBLISH_TIMEOUT, RabbitMqRpc
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

PREFETCH = 20
CLOSE_GRACE_SECONDS = 4.0
ATTEMPT = "x-attempt"
LETTER_ID = "x-dead-letter-id"


@dataclass
class _Consumer:
    group: str
    subject: str
    queue: str
    handler: MessageHandler
    max_attempts: int
    inbox: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)
    busy: bool = False
    in_hand: int = 0  # the batch being settled (for the consumer lag)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RabbitMqBus:
    def __init__(
        self,
        url: str,
        *,
        exchange: str = "events",
        namespace: str = "msashop",
        connection_name: str = "msashop",
        prefetch: int = PREFETCH,
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.dlx_name = f"{exchange}.dlx"
        self.namespace = namespace
        self.connection_name = connection_name  # shown by `rabbitmqctl list_connections name`
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None  # publisher confirms on
        # Confirms, and an unroutable message is an error: for retries, dead letters and
        # replays, which go to one queue that must exist (an event nobody subscribes to is not).
        self._routed: AbstractChannel | None = None
        self._consumer: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._dlx: AbstractExchange | None = None
        self._consumers: list[_Consumer] = []
        self._workers: list[asyncio.Task[None]] = []
        self._retry_queues: set[str] = set()
        self._rpc = RabbitMqRpc(namespace, self._publishing, self._consuming)
        self._closing = False

    # -- names ---------------------------------------------------------------------------------

    def queue_name(self, group: str, subject: str) -> str:
        return f"{self.namespace}.{group}.{subject}"

    def dlq_name(self, group: str) -> str:
        return f"{self.namespace}.dlq.{group}"

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        self._closing = False
        if self._connection is not None:  # a retried connect: drop the half-made first try
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = await aio_pika.connect_robust(
            self.url,
            client_properties={"connection_name": self.connection_name},
            reconnect_interval=1,
            timeout=5,
        )
        self._publisher = await self._connection.channel(publisher_confirms=True)
        self._routed = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._consumer = await self._connection.channel(publisher_confirms=False)
        await self._consumer.set_qos(prefetch_count=self.prefetch)
        self._exchange = await self._publisher.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._dlx = await self._routed.declare_exchange(
            self.dlx_name, aio_pika.ExchangeType.DIRECT, durable=True
        )

    async def close(self) -> None:
        # Stop the deliveries, let a handler in progress finish briefly, then close: messages
        # delivered but not handled go back to their queue when the channel closes.
        self._closing = True
        idle = [t for t, c in zip(self._workers, self._consumers, strict=True) if not c.busy]
        busy = [t for t in self._workers if t not in idle]
        for task in idle:
            task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=CLOSE_GRACE_SECONDS)
        for task in self._workers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        self._consumers.clear()
        self._rpc.reset()
        self._retry_queues.clear()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def ping(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            raise ConnectionError("not connected to RabbitMQ")
        async with asyncio.timeout(2):
            channel = await connection.channel(publisher_confirms=False)
            try:
                await channel.declare_exchange(self.exchange_name, passive=True)
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()

    # -- events --------------------------------------------------------------------------------

    async def publish(self, envelope: Envelope) -> None:
        message = self._message(envelope, {"key": envelope.key})
        await self._events().publish(message, routing_key=envelope.type, timeout=PUBLISH_TIMEOUT)

    def _message(self, envelope: Envelope, headers: dict[str, Any]) -> aio_pika.Message:
        return aio_pika.Message(
            envelope.to_bytes(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=envelope.id,
            type=envelope.type,
            timestamp=envelope.timestamp,
            headers=headers,
        )

    async def subscribe(
        self,
        subject: str,
        group: str,
        handler: MessageHandler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        consumer = _Consumer(group, subject, self.queue_name(group, subject), handler, max_attempts)
        queue = await self._declare_group_queue(self._consuming(), consumer.queue)
        await queue.bind(self._events(), routing_key=subject.replace(">", "#"))
        await self._dead_letter_queue(self._publishing(), group)
        self._consumers.append(consumer)
        self._workers.append(asyncio.create_task(self._work(consumer)))

        # Deliveries arrive as one task each, started in delivery order: queue them for the
        # consumer's single worker so they are handled in order.
        async def deliver(message: AbstractIncomingMessage) -> None:
            consumer.inbox.put_nowait(message)

        await queue.consume(deliver)

    async def _declare_group_queue(self, channel: AbstractChannel, name: str) -> AbstractQueue:
        return await channel.declare_queue(name, durable=True, arguments={"x-single-active-consumer": True})

    async def _dead_letter_queue(self, channel: AbstractChannel, group: str) -> AbstractQueue:
        queue = await channel.declare_queue(self.dlq_name(group), durable=True)
        await queue.bind(self.dlx_name, routing_key=group)
        return queue

    async def _work(self, consumer: _Consumer) -> None:
        """Take what has been delivered (up to the prefetch), handle keys side by side and each
        key's messages in delivery order; take more once all are settled."""
        while not self._closing:
            batch = [await consumer.inbox.get()]
            while len(batch) < self.prefetch and not consumer.inbox.empty():
                batch.append(consumer.inbox.get_nowait())
            consumer.busy, consumer.in_hand = True, len(batch)
            try:
                await asyncio.gather(
                    *(
                        self._settle_in_order(consumer, group)
                        for group in group_by_key(batch, lambda message: message.body, lambda _: "")
                    )
                )
            finally:
                consumer.busy, consumer.in_hand = False, 0

    async def _settle_in_order(self, consumer: _Consumer, messages: list[AbstractIncomingMessage]) -> None:
        for message in messages:
            if message.channel.is_closed:
                continue  # delivered before a reconnect: the broker has requeued it already
            try:
                await self._handle(consumer, message)
            except Exception as exc:  # noqa: BLE001 - could not pass it on: hand it back
                log.warning("bus.settle_failed", queue=consumer.queue, error=str(exc))
                await asyncio.sleep(1)  # the broker is likely busy recovering; do not spin
                with contextlib.suppress(Exception):  # a closed channel requeues it anyway
                    await message.nack(requeue=True)

    async def _handle(self, consumer: _Consumer, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.from_bytes(message.body)
        except ValidationError as exc:
            log.error("bus.malformed_message", queue=consumer.queue, error=str(exc))
            await message.reject(requeue=False)
            return
        try:
            await consumer.handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any handler failure means: redeliver later
            attempt = int(message.headers.get(ATTEMPT, 1))  # type: ignore[arg-type]
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "bus.handler_failed",
                queue=consumer.queue,
                event_id=envelope.id,
                attempt=attempt,
                error=reason,
            )
            if attempt >= consumer.max_attempts:
                await self._dead_letter(consumer, envelope, reason, attempt)
            else:
                await self._retry_later(consumer, envelope, attempt)
        # Acknowledged only once the retry or the dead letter is safely with the broker.
        await message.ack()

    async def _retry_later(self, consumer: _Consumer, envelope: Envelope, attempt: int) -> None:
        ttl_ms = int(redelivery_delay(attempt) * 1000)
        name = f"{consumer.queue}.retry.{ttl_ms}"
        channel = self._routing()
        if name not in self._retry_queues:
            await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": ttl_ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": consumer.queue,
                },
            )
            self._retry_queues.add(name)
        headers = {"key": envelope.key, ATTEMPT: attempt + 1}
        try:
            await channel.default_exchange.publish(
                self._message(envelope, headers), routing_key=name, timeout=PUBLISH_TIMEOUT
            )
        except Exception:
            self._retry_queues.discard(name)  # deleted under us? declare it again next time
            raise

    async def _dead_letter(self, consumer: _Consumer, envelope: Envelope, reason: str, attempts: int) -> None:
        headers = {
            "key": envelope.key,
            "reason": reason[:2000],
            "attempts": attempts,
            "group": consumer.group,
            "subject": consumer.subject,
            "failed_at": datetime.now(UTC).isoformat(),
            LETTER_ID: uuid.uuid4().hex,
        }
        assert self._dlx is not None
        await self._dlx.publish(
            self._message(envelope, headers), routing_key=consumer.group, timeout=PUBLISH_TIMEOUT
        )

    # -- dead letters --------------------------------------------------------------------------
    # Browsing: basic_get without ack on a channel of its own, then requeue everything (nack),
    # which puts the messages back in their places. Taking one out (replay, purge) acks only it.
    # A browse in progress hides the letters it holds from a concurrent browse for that moment.

    async def dead_letters(self, group: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        groups = [group] if group is not None else sorted({c.group for c in self._consumers})
        letters: list[DeadLetter] = []
        for name in groups:
            letters += await self._browse(name, limit - len(letters), take=None)
        return letters

    async def replay_dead_letter(self, dead_letter_id: str) -> bool:
        return await self._take(dead_letter_id, replay=True)

    async def purge_dead_letter(self, dead_letter_id: str) -> bool:
        return await self._take(dead_letter_id, replay=False)

    # -- backlog, for the metrics (chassis/bus_metrics.py): queue depths, nothing read ---------

    async def dead_letter_count(self, group: str) -> int:
        return (await self._ready([self.dlq_name(group)]))[0]

    async def consumer_lag(self, group: str) -> dict[str, int]:
        mine = [c for c in self._consumers if c.group == group]
        ready = await self._ready([c.queue for c in mine])
        # Ready on the broker, plus delivered to this process and not settled yet.
        return {c.subject: n + c.inbox.qsize() + c.in_hand for c, n in zip(mine, ready, strict=True)}

    async def _ready(self, queues: list[str]) -> list[int]:
        # A passive declare of a missing queue closes its channel: a channel of its own.
        channel = await self._connected().channel(publisher_confirms=False)
        try:
            declared = [await channel.declare_queue(name, passive=True) for name in queues]
            return [q.declaration_result.message_count or 0 for q in declared]
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _take(self, dead_letter_id: str, *, replay: bool) -> bool:
        group, _, letter_id = dead_letter_id.rpartition(":")
        if not group:
            return False
        found = await self._browse(group, None, take=letter_id, replay=replay)
        return bool(found)

    async def _browse(
        self, group: str, limit: int | None, *, take: str | None, replay: bool = False
    ) -> list[DeadLetter]:
        if limit is not None and limit <= 0:
            return []
        channel = await self._connected().channel(publisher_confirms=False)
        held: list[AbstractIncomingMessage] = []
        letters: list[DeadLetter] = []
        try:
            queue = await self._dead_letter_queue(channel, group)
            while limit is None or len(letters) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                letter = self._letter(group, message)
                if take is None:
                    held.append(message)
                    if letter is not None:
                        letters.append(letter)
                elif letter is not None and letter.id == f"{group}:{take}":
                    if replay:
                        await self._replay(letter)
                    await message.ack()
                    return [letter]
                else:
                    held.append(message)
            return letters
        finally:
            for message in held:
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
            with contextlib.suppress(Exception):
                await channel.close()

    def _letter(self, group: str, message: AbstractIncomingMessage) -> DeadLetter | None:
        headers = message.headers
        try:
            return DeadLetter(
                id=f"{group}:{_text(headers[LETTER_ID])}",
                group=group,
                subject=_text(headers["subject"]),
                envelope=Envelope.from_bytes(message.body),
                reason=_text(headers.get("reason", "")),
                attempts=int(_text(headers.get("attempts", 0))),
                failed_at=datetime.fromisoformat(_text(headers["failed_at"])),
            )
        except (KeyError, ValueError, ValidationError) as exc:
            log.error("bus.malformed_dead_letter", group=group, error=str(exc))
            return None

    async def _replay(self, letter: DeadLetter) -> None:
        # Straight to the failed group's queue through the default exchange: no other group
        # sees it again. A fresh attempt count.
        channel = self._routing()
        name = self.queue_name(letter.group, letter.subject)
        await self._declare_group_queue(channel, name)
        headers = {"key": letter.envelope.key, ATTEMPT: 1}
        await channel.default_exchange.publish(
            self._message(letter.envelope, headers), routing_key=name, timeout=PUBLISH_TIMEOUT
        )

    # -- request / respond (rabbitmq_rpc.py) ----------------------------------------------------

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        return await self._rpc.request(subject, body, timeout=timeout)

    async def respond(self, subject: str, responder: Responder) -> None:
        await self._rpc.respond(subject, responder)

    # -- helpers -------------------------------------------------------------------------------

    def _connected(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("bus is not connected")
        return self._connection

    def _publishing(self) -> AbstractChannel:
        if self._publisher is None:
            raise RuntimeError("bus is not connected")
        return self._publisher

    def _routing(self) -> AbstractChannel:
        if self._routed is None:
            raise RuntimeError("bus is not connected")
        return self._routed

    def _consuming(self) -> AbstractChannel:
        if self._consumer is None:
            raise RuntimeError("bus is not connected")
        return self._consumer

    def _events(self) -> AbstractExchange:
        if self._exchange is None:
            raise RuntimeError("bus is not connected")
        return self._exchange
