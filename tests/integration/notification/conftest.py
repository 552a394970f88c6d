"""A notification service on a temporary SQLite file, fed through an in-memory bus."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.contracts.envelope import Envelope, wrap
from msashop.contracts.events import Payload
from msashop.services.notification.config import NotificationSettings
from msashop.services.notification.db import notifications
from msashop.services.notification.domain import Sender
from msashop.services.notification.main import create_service


class NotificationApp:
    def __init__(self, service: Service, client: httpx.AsyncClient, key: SigningKey) -> None:
        self.service = service
        self.client = client
        self.key = key
        assert isinstance(service.bus, InMemoryBus)
        self.bus: InMemoryBus = service.bus

    async def deliver(self, payload: Payload, *, event_id: str | None = None) -> Envelope:
        """Put an event on the bus the way its producer would; the chassis consumes it."""
        envelope = wrap(payload, source="test", key="k", event_id=event_id)
        await self.bus.publish(envelope)
        assert self.bus.failures == []
        return envelope

    async def listed(self, user_id: str) -> list[dict]:
        response = await self.client.get("/notifications", headers=self.auth(user_id))
        assert response.status_code == 200
        return response.json()

    async def delivered_via(self) -> list[tuple[str, str]]:
        async with self.service.unit_of_work() as uow:
            rows = await uow.session.execute(
                sa.select(notifications.c.type, notifications.c.delivered_via).order_by(notifications.c.type)
            )
            return [(t, v) for t, v in rows]

    def auth(self, user_id: str) -> dict[str, str]:
        token, _ = self.key.access_token(user_id)
        return {"Authorization": f"Bearer {token}"}


Factory = Callable[..., Awaitable[NotificationApp]]


@pytest.fixture
async def start_notification(tmp_path: Path) -> AsyncIterator[Factory]:
    """Start the service (optionally with another sender or settings); stopped after the test."""
    stack: list[tuple[Service, httpx.AsyncClient]] = []

    async def start(sender: Sender | None = None, **settings: object) -> NotificationApp:
        service = create_service(
            NotificationSettings.load("notification", data_dir=tmp_path, **settings),
            bus=InMemoryBus(),
            sender=sender,
        )
        key = SigningKey.generate()
        service.verifier.set_jwks(key.jwks())
        service.verifier.fetch_jwks = None
        await service.start()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://n")
        stack.append((service, client))
        return NotificationApp(service, client, key)

    yield start
    for service, client in stack:
        await client.aclose()
        await service.stop()


@pytest.fixture
async def notification(start_notification: Factory) -> NotificationApp:
    return await start_notification()
