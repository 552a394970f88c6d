"""An in-process bus for unit and service tests: the port's semantics without a broker.

Delivery is inline: `publish` hands the message to one handler per group before returning. A
refused message is retried at once (no backoff: tests should not sleep) up to the group's
`max_attempts`, then dead-lettered; `failures` records every refusal for a test to assert on.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from msashop.chassis.bus.port import (
    DEFAULT_MAX_ATTEMPTS,
    DeadLetter,
    MessageHandler,
    Responder,
    RpcError,
    RpcTimeout,
)
from msashop.contracts.envelope import Envelope


@dataclass
class _Group:
    handler: MessageHandler
    max_attempts: int


class InMemoryBus:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.failures: list[tuple[Envelope, Exception]] = []
        self._groups: dict[str, dict[str, _Group]] = defaultdict(dict)
        self._dead: dict[str, DeadLetter] = {}
        self._responders: dict[str, Responder] = {}

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def publish(self, envelope: Envelope) -> None:
        self.published.append(envelope)
        for name, group in list(self._groups[envelope.type].items()):
            await self._deliver(envelope, name, group)

    async def subscribe(
        self,
        subject: str,
        group: str,
        handler: MessageHandler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._groups[subject][group] = _Group(handler, max_attempts)

    async def _deliver(self, envelope: Envelope, name: str, group: _Group) -> None:
        for _ in range(group.max_attempts):
            try:
                await group.handler(envelope)
                return
            except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
                self.failures.append((envelope, exc))
                reason = f"{type(exc).__name__}: {exc}"
        letter = DeadLetter(
            id=uuid.uuid4().hex,
            group=name,
            subject=envelope.type,
            envelope=envelope,
            reason=reason,
            attempts=group.max_attempts,
            failed_at=datetime.now(UTC),
        )
        self._dead[letter.id] = letter

    async def dead_letters(self, group: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        letters = [d for d in self._dead.values() if group is None or d.group == group]
        return letters[:limit]

    async def replay_dead_letter(self, dead_letter_id: str) -> bool:
        letter = self._dead.pop(dead_letter_id, None)
        if letter is None:
            return False
        group = self._groups[letter.subject].get(letter.group)
        if group is not None:
            await self._deliver(letter.envelope, letter.group, group)
        return True

    async def purge_dead_letter(self, dead_letter_id: str) -> bool:
        return self._dead.pop(dead_letter_id, None) is not None

    async def request(self, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        responder = self._responders.get(subject)
        if responder is None:
            raise RpcTimeout(f"no reply on {subject} within {timeout} s")
        try:
            return await responder(body)
        except Exception as exc:
            raise RpcError(f"{subject}: {type(exc).__name__}: {exc}") from exc

    async def respond(self, subject: str, responder: Responder) -> None:
        self._responders[subject] = responder

    async def drain(self) -> None:
        return None
