"""NATS JetStream adapter: one file-backed stream, a durable pull consumer per (group, subject)."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from msashop.chassis.bus.port import MessageHandler, redelivery_delay
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

STREAM = "MSASHOP"
PREFIX = "msashop."
CLOSE_GRACE_SECONDS = 4.0


class NatsJetStreamBus:
    def __init__(self, url: str, *, stream: str = STREAM, prefix: str = PREFIX) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def connect(self) -> None:
        self._nc = await nats.connect(
            self.url,
            name="msashop",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
        )
        self._js = self._nc.jetstream(timeout=10)
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}>"],
            duplicate_window=120.0,
        )
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            with contextlib.suppress(Exception):  # another process may have created it meanwhile
                await self._js.add_stream(config)
            await self._js.stream_info(self.stream)

    async def close(self) -> None:
        # Consumers stop fetching and finish the message in hand (a fetch waits at most 1 s);
        # only one stuck in a handler is cancelled. No drain(): with pull subscriptions it can
        # wait out its 30 s timeout, longer than the supervisor grants a stopping service.
        self._closing = True
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def ping(self) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError("not connected to NATS")
        await self._nc.flush(timeout=2)

    async def publish(self, envelope: Envelope) -> None:
        await self._jetstream().publish(
            self.prefix + envelope.type,
            envelope.to_bytes(),
            headers={"Nats-Msg-Id": envelope.id},
            timeout=5,
        )

    async def subscribe(
        self, subject: str, group: str, handler: MessageHandler, *, max_attempts: int = 5
    ) -> None:
        durable = f"{group}--{subject}".replace(".", "_").replace("*", "any").replace(">", "all")
        sub = await self._jetstream().pull_subscribe(
            self.prefix + subject,
            durable=durable,
            stream=self.stream,
            config=ConsumerConfig(ack_wait=60, max_deliver=-1, max_ack_pending=1000),
        )
        self._tasks.append(asyncio.create_task(self._consume(sub, handler, durable)))

    async def _consume(
        self, sub: JetStreamContext.PullSubscription, handler: MessageHandler, durable: str
    ) -> None:
        while not self._closing:
            try:
                messages = await sub.fetch(batch=20, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker away: the client reconnects, we wait
                log.warning("bus.fetch_failed", consumer=durable, error=str(exc))
                await asyncio.sleep(1)
                continue
            for msg in messages:
                if self._closing:  # hand the rest back now rather than after the ack wait
                    with contextlib.suppress(Exception):
                        await msg.nak()
                    continue
                await self._handle(msg, handler, durable)

    async def _handle(self, msg: Msg, handler: MessageHandler, durable: str) -> None:
        try:
            envelope = Envelope.from_bytes(msg.data)
        except ValidationError as exc:
            log.error("bus.malformed_message", consumer=durable, subject=msg.subject, error=str(exc))
            await msg.term()
            return
        try:
            await handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any handler failure means: redeliver later
            attempt = msg.metadata.num_delivered if msg.metadata else 1
            log.warning(
                "bus.handler_failed",
                consumer=durable,
                subject=envelope.type,
                event_id=envelope.id,
                attempt=attempt,
                error=f"{type(exc).__name__}: {exc}",
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=redelivery_delay(attempt))
            return
        with contextlib.suppress(Exception):
            await msg.ack()

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus is not connected")
        return self._js
