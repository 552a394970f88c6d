"""What the platform needs from a message broker.

Every adapter (NATS JetStream, RabbitMQ, Kafka, and the in-memory fake) passes the one shared
suite in tests/integration/bus against a real server. Semantics every adapter keeps:

- publish: durable once it returns; the partition key is `envelope.key` (the aggregate id), and
  messages with the same key are delivered to a group in publish order.
- subscribe: a named, durable consumer group. Every group gets every message; the instances of
  one group share them. The handler returning acknowledges; raising refuses the message, which
  is redelivered after an exponential backoff (`redelivery_delay`). After `max_attempts`
  failures it goes to the group's dead-letter queue with the failure reason, the attempt count
  and the original envelope, and the group moves on.
- dead letters: listed, shown, replayed (to the failed group only, never to the others; the
  inbox keeps the effect once), purged.
- request/respond: RPC with a correlation id, a reply-to and a timeout (`RpcTimeout`).

Where brokers differ: on NATS and Kafka a group that subscribes for the first time reads the
events already kept; on RabbitMQ its queue, and what it receives, begins with that first
subscription (the supervisor starts consumers first for this reason).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from msashop.contracts.envelope import Envelope

# Raise to refuse the message: it is redelivered later (at least once).
MessageHandler = Callable[[Envelope], Awaitable[None]]
# Answers one RPC request body with a reply body; raising answers with an error.
Responder = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

DEFAULT_MAX_ATTEMPTS = 5
MAX_REDELIVERY_DELAY = 30.0


M = TypeVar("M")


def group_by_key(
    messages: list[M], body: Callable[[M], bytes], fallback: Callable[[M], str]
) -> list[list[M]]:
    """Messages grouped by envelope key, each group in the order received: adapters handle the
    groups side by side and each group in order. A message without a key (or not an envelope,
    which the adapter then refuses) goes under `fallback(message)`."""
    groups: dict[str, list[M]] = {}
    for message in messages:
        try:
            key = Envelope.from_bytes(body(message)).key or fallback(message)
        except ValidationError:
            key = fallback(message)
        groups.setdefault(key, []).append(message)
    return list(groups.values())


def redelivery_delay(attempt: int) -> float:
    """Backoff before redelivering a message refused `attempt` times: 0.5 s, 1 s, 2 s ... 30 s."""
    return float(min(MAX_REDELIVERY_DELAY, 0.5 * 2 ** max(0, attempt - 1)))


class RpcTimeout(TimeoutError):
    """No reply within the timeout: the responder is down, slow, or the request was lost."""


class RpcError(RuntimeError):
    """The responder answered with an error."""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the adapter's handle for show / replay / purge
    group: str
    subject: str
    envelope: Envelope
    reason: str
    attempts: int
    failed_at: datetime


class EventBus(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the broker cannot be reached right now."""

    async def publish(self, envelope: Envelope) -> None:
        """Durably publish on subject `envelope.type`, keyed by `envelope.key`."""

    async def subscribe(
        self,
        subject: str,
        group: str,
        handler: MessageHandler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        """Consume `subject` in durable consumer group `group` (see the module docstring)."""

    async def dead_letters(self, group: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first, of one group or of all."""

    async def replay_dead_letter(self, dead_letter_id: str) -> bool:
        """Deliver it again to its group only, and take it off the dead-letter queue.

        False if there is no such dead letter.
        """

    async def purge_dead_letter(self, dead_letter_id: str) -> bool:
        """Drop it for good. False if there is no such dead letter."""

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Send a request and wait for its reply; `RpcTimeout` after `timeout` seconds."""

    async def respond(self, subject: str, responder: Responder) -> None:
        """Answer requests on `subject` (the instances of a service share them)."""
