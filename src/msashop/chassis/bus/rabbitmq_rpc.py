"""Request/reply for the RabbitMQ adapter.

Requests go through the default exchange to `<namespace>.rpc.<subject>`, an auto-delete queue
the responders of that subject share (it goes when the last one leaves, so a request nobody
serves is dropped at once and the caller times out). Each request carries a correlation id,
the caller's reply queue (exclusive, one per bus) and an expiration equal to its timeout.
Errors come back as {"error": ...} with the `x-rpc-error` header set.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from msashop.chassis.bus.port import Responder, RpcError, RpcTimeout

RPC_ERROR = "x-rpc-error"
PUBLISH_TIMEOUT = 10.0
Reply = tuple[dict[str, Any], bool]


def _json_message(body: dict[str, Any], **properties: Any) -> aio_pika.Message:
    return aio_pika.Message(json.dumps(body).encode(), content_type="application/json", **properties)


class RabbitMqRpc:
    def __init__(
        self,
        namespace: str,
        publishing: Callable[[], AbstractChannel],
        consuming: Callable[[], AbstractChannel],
    ) -> None:
        self.namespace = namespace
        self._publishing = publishing
        self._consuming = consuming
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._reply_queue: str | None = None
        self._reply_lock = asyncio.Lock()

    def queue_name(self, subject: str) -> str:
        return f"{self.namespace}.rpc.{subject}"

    def reset(self) -> None:
        """Forget the reply queue and abandon the waiting calls (the bus is closing)."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._reply_queue = None

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(timeout):
                message = _json_message(
                    body,
                    correlation_id=correlation_id,
                    reply_to=await self._reply_queue_name(),
                    expiration=timeout,  # nobody waits for it afterwards
                )
                await self._publishing().default_exchange.publish(
                    message, routing_key=self.queue_name(subject)
                )
                reply, failed = await future
        except TimeoutError as exc:
            raise RpcTimeout(f"no reply on {subject} within {timeout} s") from exc
        finally:
            self._pending.pop(correlation_id, None)
        if failed:
            raise RpcError(f"{subject}: {reply.get('error', 'unknown error')}")
        return reply

    async def _reply_queue_name(self) -> str:
        async with self._reply_lock:
            if self._reply_queue is None:
                # Named by us, not by the broker: the robust channel declares it again under
                # the same name after a reconnect, so the name in flight stays valid.
                name = f"{self.namespace}.reply.{uuid.uuid4().hex}"
                queue = await self._consuming().declare_queue(name, exclusive=True)
                await queue.consume(self._on_reply, no_ack=True)
                self._reply_queue = name
            return self._reply_queue

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return  # a late reply to a request that timed out
        try:
            reply = json.loads(message.body)
        except ValueError:
            reply = {"error": "malformed reply"}
        failed = bool(message.headers.get(RPC_ERROR)) or not isinstance(reply, dict)
        future.set_result((reply if isinstance(reply, dict) else {"error": "malformed reply"}, failed))

    async def respond(self, subject: str, responder: Responder) -> None:
        queue = await self._consuming().declare_queue(self.queue_name(subject), auto_delete=True)

        async def answer(message: AbstractIncomingMessage) -> None:
            async with message.process(requeue=False, ignore_processed=True):
                headers: dict[str, Any] = {}
                try:
                    reply = await responder(json.loads(message.body))
                except Exception as exc:  # noqa: BLE001 - the error goes back to the caller
                    reply, headers = {"error": f"{type(exc).__name__}: {exc}"}, {RPC_ERROR: True}
                if message.reply_to:
                    await self._publishing().default_exchange.publish(
                        _json_message(reply, correlation_id=message.correlation_id, headers=headers),
                        routing_key=message.reply_to,
                        timeout=PUBLISH_TIMEOUT,
                    )

        await queue.consume(answer)
