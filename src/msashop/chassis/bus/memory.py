"""An in-process bus for unit tests: same semantics, no broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from msashop.chassis.bus.port import MessageHandler
from msashop.contracts.envelope import Envelope


class InMemoryBus:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self._groups: dict[str, dict[str, MessageHandler]] = defaultdict(dict)
        self.failures: list[tuple[Envelope, Exception]] = []

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def publish(self, envelope: Envelope) -> None:
        self.published.append(envelope)
        for handler in self._groups[envelope.type].values():
            try:
                await handler(envelope)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
                self.failures.append((envelope, exc))

    async def subscribe(self, subject: str, group: str, handler: MessageHandler) -> None:
        self._groups[subject][group] = handler

    async def drain(self) -> None:
        await asyncio.sleep(0)
