"""What the platform needs from a message broker. Every adapter passes tests/integration/bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from msashop.contracts.envelope import Envelope

# Raise to refuse the message: it is redelivered later (at least once).
MessageHandler = Callable[[Envelope], Awaitable[None]]


class EventBus(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the broker cannot be reached right now."""

    async def publish(self, envelope: Envelope) -> None:
        """Durably publish on subject `envelope.type`; returns once the broker has it."""

    async def subscribe(self, subject: str, group: str, handler: MessageHandler) -> None:
        """Durable consumer group: every group sees each message; a group's instances share them.

        The handler returning acknowledges the message; raising redelivers it later.
        """
