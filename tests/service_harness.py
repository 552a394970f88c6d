"""One harness for driving a single service in a test.

A service built with `bus=InMemoryBus()` is started through its lifespan (migrations, bus
subscriptions, outbox relay) and wrapped with an HTTP client on its ASGI app, a signing key its
token verifier trusts, and helpers to put messages on its bus and read what it queued in its outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.messaging_tables import outbox
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.contracts.envelope import Envelope, wrap
from msashop.contracts.events import Payload


class ServiceHarness:
    """A running service, a client on its API, a key it trusts and its in-memory bus."""

    def __init__(self, service: Service, client: httpx.AsyncClient, key: SigningKey) -> None:
        assert isinstance(service.bus, InMemoryBus), "build the service with bus=InMemoryBus()"
        self.service = service
        self.client = client
        self.key = key
        self.bus: InMemoryBus = service.bus

    def auth_headers(self, user_id: str, *roles: str) -> dict[str, str]:
        """A bearer token for `user_id` (a customer unless roles are given), as the user service signs it."""
        token, _ = self.key.access_token(user_id, roles or ("customer",))
        return {"Authorization": f"Bearer {token}"}

    async def deliver(
        self, payload: Payload, *, source: str = "test", event_id: str | None = None
    ) -> Envelope:
        """Put a message on the bus the way its producer would; the service consumes it at once."""
        envelope = wrap(payload, source=source, key=_aggregate_id(payload), event_id=event_id)
        await self.bus.publish(envelope)
        assert self.bus.failures == [], self.bus.failures
        return envelope

    async def outbox_events(self) -> list[Envelope]:
        """Every message the service queued in its outbox, in order (published or not)."""
        async with self.service.unit_of_work() as uow:
            rows = await uow.session.execute(sa.select(outbox.c.envelope).order_by(outbox.c.seq))
            return [Envelope.model_validate_json(raw) for (raw,) in rows]


def _aggregate_id(payload: Payload) -> str:
    """The message key producers use: the id of the aggregate the payload is about."""
    for field in ("order_id", "product_id", "user_id"):
        value = getattr(payload, field, None)
        if value:
            return str(value)
    return "k"


H = TypeVar("H", bound=ServiceHarness)


@asynccontextmanager
async def running(
    service: Service,
    *,
    key: SigningKey | None = None,
    harness: type[H] = ServiceHarness,  # type: ignore[assignment]
) -> AsyncIterator[H]:
    """Start `service` through its lifespan and yield a harness on it; stopped on exit.

    Tokens are checked against `key` alone (a fresh one unless given) and never fetched from a
    user service. `harness` is a ServiceHarness subclass carrying a service's own helpers.
    """
    key = key or SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service.name}") as client:
            yield harness(service, client, key)
