"""NATS JetStream adapter.

- Events: one file-backed stream (`stream`, subjects `prefix>`), a durable pull consumer per
  (group, subject). A refused message is nak'ed with the port's backoff; on its `max_attempts`-th
  failure it is copied to the dead-letter stream and terminated.
- Dead letters: a second stream `<stream>_DLQ` on `<prefix>_dlq.>`, one message per letter on
  `...dead.<group>` (JSON: group, subject, reason, attempts, failed_at, envelope); its stream
  sequence is the letter's id. Listing reads by sequence, so it takes nothing off the queue.
- Replay: the envelope goes to `...replay.<group>` in the same stream, which only that group
  consumes (one durable consumer per group) and dispatches by `envelope.type` to the group's
  handlers; the other groups never see it again.
- RPC: core NATS request/reply on `<prefix>_rpc.<subject>` (outside the event stream, which
  would otherwise store requests and answer them with a publish ack), responders in a queue group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RawStreamMsg, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from msashop.chassis.bus.port import (
    DEFAULT_MAX_ATTEMPTS,
    DeadLetter,
    MessageHandler,
    Responder,
    RpcError,
    RpcTimeout,
    group_by_key,
    redelivery_delay,
)
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

STREAM = "MSASHOP"
PREFIX = "msashop."
CLOSE_GRACE_SECONDS = 4.0
PING_TIMEOUT_SECONDS = 2.0
RPC_QUEUE = "responders"
RPC_ERROR_HEADER = "Msashop-Rpc-Error"
# A message a consumer took and never acknowledged (its process died) is delivered again after
# this long. Handlers that could run longer must not exist: they would be handled twice.
ACK_WAIT_SECONDS = 15

# What a consumer runs for one message: the handler and its attempt limit, None if it has none.
Route = Callable[[Envelope], "tuple[MessageHandler, int] | None"]


async def _answer_ping(msg: Msg) -> None:
    await msg.respond(b"")


def _token(name: str) -> str:
    """A name as one subject token / consumer name (no dots, wildcards or spaces)."""
    for char, spelled in ((".", "_"), ("*", "any"), (">", "all"), (" ", "_")):
        name = name.replace(char, spelled)
    return name


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a trailing `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for i, part in enumerate(wanted):
        if part == ">":
            return len(tokens) > i
        if i >= len(tokens) or (part != "*" and part != tokens[i]):
            return False
    return len(tokens) == len(wanted)


class NatsJetStreamBus:
    def __init__(self, url: str, *, stream: str = STREAM, prefix: str = PREFIX) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        base = prefix.rstrip(".")
        self.dlq_stream = f"{stream}_DLQ"
        self.dlq_prefix = f"{base}_dlq."
        self.rpc_prefix = f"{base}_rpc."
        # This process's own subject for ping(), outside every stream (nothing stores it).
        self.ping_subject = f"{base}_ping.{uuid.uuid4().hex}"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._routes: dict[str, list[tuple[str, MessageHandler, int]]] = {}
        self._closing = False

    async def connect(self) -> None:
        self._nc = await nats.connect(
            self.url,
            name="msashop",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            # A connection whose reader died must be noticed in seconds, not nats-py's 4 minutes:
            # after an outage a PONG for a flush that timed out meets a cancelled future, the read
            # loop stops on InvalidStateError and only the ping timer can tell (stale -> reconnect).
            ping_interval=5,
            max_outstanding_pings=3,
        )
        self._js = self._nc.jetstream(timeout=10)
        await self._nc.subscribe(self.ping_subject, cb=_answer_ping)  # re-subscribed on reconnect
        await self._ensure_stream(
            StreamConfig(name=self.stream, subjects=[f"{self.prefix}>"], duplicate_window=120.0)
        )
        await self._ensure_stream(
            StreamConfig(name=self.dlq_stream, subjects=[f"{self.dlq_prefix}>"], duplicate_window=120.0)
        )

    async def _ensure_stream(self, config: StreamConfig) -> None:
        js = self._jetstream()
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            with contextlib.suppress(Exception):  # another process may have created it meanwhile
                await js.add_stream(config)
            await js.stream_info(config.name)

    async def close(self) -> None:
        # Consumers stop fetching and finish the message in hand (a fetch waits at most 1 s);
        # only one stuck in a handler is cancelled. No drain(): with pull subscriptions it can
        # wait out its 30 s timeout, longer than the supervisor grants a stopping service.
        self._closing = True
        running = [*self._tasks, *self._answering]
        if running:
            _, stuck = await asyncio.wait(running, timeout=CLOSE_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def ping(self) -> None:
        """A request to this process's own subject, answered by its own subscription: the server
        routes both ways and our read loop is alive. Not `flush()`: a flush that times out
        cancels its PONG future, and the late PONG then stops nats-py's read loop."""
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError("not connected to NATS")
        await self._nc.request(self.ping_subject, b"", timeout=PING_TIMEOUT_SECONDS)

    async def publish(self, envelope: Envelope) -> None:
        await self._jetstream().publish(
            self.prefix + envelope.type,
            envelope.to_bytes(),
            headers={"Nats-Msg-Id": envelope.id},
            timeout=5,
        )

    async def subscribe(
        self,
        subject: str,
        group: str,
        handler: MessageHandler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        durable = _token(f"{group}--{subject}")
        await self._consume_from(
            self.stream, self.prefix + subject, durable, group, lambda _: (handler, max_attempts)
        )
        routes = self._routes.setdefault(group, [])
        routes.append((subject, handler, max_attempts))
        if len(routes) == 1:  # the group's first subject: also take its replays
            replay = self._replay_subject(group)
            await self._consume_from(
                self.dlq_stream, replay, _token(f"{group}--replay"), group, self._route(group)
            )

    def _route(self, group: str) -> Route:
        def route(envelope: Envelope) -> tuple[MessageHandler, int] | None:
            for pattern, handler, max_attempts in self._routes.get(group, []):
                if subject_matches(pattern, envelope.type):
                    return handler, max_attempts
            return None

        return route

    async def _consume_from(self, stream: str, subject: str, durable: str, group: str, route: Route) -> None:
        sub = await self._jetstream().pull_subscribe(
            subject,
            durable=durable,
            stream=stream,
            # Attempts are counted here, not by the server: a letter that could not be written
            # to the dead-letter stream must stay on the queue.
            config=ConsumerConfig(ack_wait=ACK_WAIT_SECONDS, max_deliver=-1, max_ack_pending=1000),
        )
        self._tasks.append(asyncio.create_task(self._consume(sub, route, durable, group)))

    async def _consume(
        self, sub: JetStreamContext.PullSubscription, route: Route, durable: str, group: str
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
            # Keys run side by side; within one key, messages go strictly in order. The next
            # fetch waits for the whole batch, so order holds across batches too.
            await asyncio.gather(
                *(
                    self._handle_in_order(batch, route, durable, group)
                    for batch in group_by_key(messages, lambda msg: msg.data, lambda msg: msg.subject)
                )
            )

    async def _handle_in_order(self, messages: list[Msg], route: Route, durable: str, group: str) -> None:
        for msg in messages:
            if self._closing:  # hand the rest back now rather than after the ack wait
                with contextlib.suppress(Exception):
                    await msg.nak()
                continue
            await self._handle(msg, route, durable, group)

    async def _handle(self, msg: Msg, route: Route, durable: str, group: str) -> None:
        try:
            envelope = Envelope.from_bytes(msg.data)
        except ValidationError as exc:
            log.error("bus.malformed_message", consumer=durable, subject=msg.subject, error=str(exc))
            await msg.term()
            return
        target = route(envelope)
        attempt = msg.metadata.num_delivered if msg.metadata and msg.metadata.num_delivered else 1
        try:
            if target is None:
                raise LookupError(f"group {group} has no handler for {envelope.type} here")
            await target[0](envelope)
        except asyncio.CancelledError:
            # Stopped mid-handler: give the message back now, not after the ack wait.
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Exception as exc:  # noqa: BLE001 - any handler failure means: redeliver later
            max_attempts = target[1] if target else DEFAULT_MAX_ATTEMPTS
            await self._refuse(
                msg, envelope, group, durable, f"{type(exc).__name__}: {exc}", attempt, max_attempts
            )
            return
        with contextlib.suppress(Exception):
            await msg.ack()

    async def _refuse(
        self,
        msg: Msg,
        envelope: Envelope,
        group: str,
        durable: str,
        reason: str,
        attempt: int,
        max_attempts: int,
    ) -> None:
        log.warning(
            "bus.handler_failed",
            consumer=durable,
            subject=envelope.type,
            event_id=envelope.id,
            attempt=attempt,
            error=reason,
        )
        if attempt >= max_attempts:
            try:
                await self._dead_letter(msg, envelope, group, durable, reason, attempt)
            except Exception as exc:  # noqa: BLE001 - keep it on the queue: it comes back later
                log.error("bus.dead_letter_failed", consumer=durable, event_id=envelope.id, error=str(exc))
            else:
                with contextlib.suppress(Exception):
                    await msg.term()
                return
        try:
            await msg.nak(delay=redelivery_delay(attempt))
        except Exception as exc:  # noqa: BLE001 - the server redelivers it after the ack wait
            log.warning("bus.nak_failed", consumer=durable, event_id=envelope.id, error=str(exc))

    async def _dead_letter(
        self, msg: Msg, envelope: Envelope, group: str, durable: str, reason: str, attempts: int
    ) -> None:
        body = {
            "group": group,
            "subject": envelope.type,
            "reason": reason,
            "attempts": attempts,
            "failed_at": datetime.now(UTC).isoformat(),
            "envelope": envelope.model_dump(mode="json"),
        }
        sequence = msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else envelope.id
        await self._jetstream().publish(
            f"{self.dlq_prefix}dead.{_token(group)}",
            json.dumps(body).encode(),
            stream=self.dlq_stream,
            # A crash between this write and the term redelivers the message: write it once.
            headers={"Nats-Msg-Id": f"dlq:{durable}:{sequence}"},
            timeout=5,
        )
        log.error(
            "bus.dead_lettered", group=group, subject=envelope.type, event_id=envelope.id, attempts=attempts
        )

    def _replay_subject(self, group: str) -> str:
        return f"{self.dlq_prefix}replay.{_token(group)}"

    async def dead_letters(self, group: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        wanted = f"{self.dlq_prefix}dead.{_token(group) if group else '>'}"
        letters: list[DeadLetter] = []
        sequence = 1
        while len(letters) < limit:
            try:
                raw = await self._jetstream().get_msg(
                    self.dlq_stream, seq=sequence, subject=wanted, next=True
                )
            except NotFoundError:
                break
            assert raw.seq is not None
            sequence = raw.seq + 1
            letter = self._letter(raw)
            if letter is not None and (group is None or letter.group == group):
                letters.append(letter)
        return letters

    def _letter(self, raw: RawStreamMsg) -> DeadLetter | None:
        try:
            body = json.loads(raw.data or b"")
            return DeadLetter(
                id=str(raw.seq),
                group=body["group"],
                subject=body["subject"],
                envelope=Envelope.model_validate(body["envelope"]),
                reason=body["reason"],
                attempts=int(body["attempts"]),
                failed_at=datetime.fromisoformat(body["failed_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.error("bus.malformed_dead_letter", stream=self.dlq_stream, seq=raw.seq, error=str(exc))
            return None

    async def _find(self, dead_letter_id: str) -> DeadLetter | None:
        if not dead_letter_id.isdigit() or int(dead_letter_id) < 1:
            return None
        try:
            raw = await self._jetstream().get_msg(self.dlq_stream, seq=int(dead_letter_id))
        except NotFoundError:
            return None
        if not (raw.subject or "").startswith(f"{self.dlq_prefix}dead."):
            return None  # a replay request, not a letter
        return self._letter(raw)

    async def replay_dead_letter(self, dead_letter_id: str) -> bool:
        letter = await self._find(dead_letter_id)
        if letter is None:
            return False
        await self._jetstream().publish(
            self._replay_subject(letter.group),
            letter.envelope.to_bytes(),
            stream=self.dlq_stream,
            headers={"Nats-Msg-Id": f"replay:{dead_letter_id}"},  # a retried replay goes out once
            timeout=5,
        )
        return await self.purge_dead_letter(dead_letter_id)

    async def purge_dead_letter(self, dead_letter_id: str) -> bool:
        if await self._find(dead_letter_id) is None:
            return False
        try:
            return await self._jetstream().delete_msg(self.dlq_stream, int(dead_letter_id))
        except NotFoundError:
            return False

    # --- backlog, for the metrics (chassis/bus_metrics.py): one request each ------------------
    async def dead_letter_count(self, group: str) -> int:
        subject = f"{self.dlq_prefix}dead.{_token(group)}"
        info = await self._jetstream().stream_info(self.dlq_stream, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def consumer_lag(self, group: str) -> dict[str, int]:
        lag: dict[str, int] = {}
        for subject, _, _ in self._routes.get(group, []):
            info = await self._jetstream().consumer_info(self.stream, _token(f"{group}--{subject}"))
            lag[subject] = (info.num_pending or 0) + (info.num_ack_pending or 0)
        return lag

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause = 0.02
        while True:
            try:
                reply = await self._client().request(
                    self.rpc_prefix + subject, json.dumps(body).encode(), timeout=deadline - loop.time()
                )
                break
            except NoRespondersError as exc:
                # No subscriber this instant: a responder restarting, or (seen under load) one
                # whose subscription the server has not routed yet. Asked again until the
                # caller's timeout, as a slow answer would be waited for.
                if loop.time() + pause >= deadline:
                    raise RpcTimeout(f"no reply on {subject}: nobody answers it") from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
            except (NatsTimeout, TimeoutError) as exc:
                raise RpcTimeout(f"no reply on {subject} within {timeout} s") from exc
        answer: dict[str, Any] = json.loads(reply.data)
        if reply.headers and reply.headers.get(RPC_ERROR_HEADER):
            raise RpcError(f"{subject}: {answer.get('error', 'error')}")
        return answer

    async def respond(self, subject: str, responder: Responder) -> None:
        async def on_request(msg: Msg) -> None:
            # One task per request: a slow answer does not hold up the next request.
            task = asyncio.create_task(self._answer(msg, responder, subject))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

        await self._client().subscribe(self.rpc_prefix + subject, queue=RPC_QUEUE, cb=on_request)
        await self._client().flush(timeout=5)  # the server knows the responder once this returns

    async def _answer(self, msg: Msg, responder: Responder, subject: str) -> None:
        headers: dict[str, str] | None = None
        try:
            reply = json.dumps(await responder(json.loads(msg.data)), default=str)
        except Exception as exc:  # noqa: BLE001 - the caller gets the error as an RpcError
            log.warning("bus.responder_failed", subject=subject, error=f"{type(exc).__name__}: {exc}")
            reply = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            headers = {RPC_ERROR_HEADER: "1"}
        if msg.reply:
            with contextlib.suppress(Exception):  # the caller gave up or the broker is away
                await self._client().publish(msg.reply, reply.encode(), headers=headers)

    def _client(self) -> Client:
        if self._nc is None:
            raise RuntimeError("bus is not connected")
        return self._nc

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus is not connected")
        return self._js
