"""A notification service on a temporary SQLite file, fed through an in-memory bus."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.notification.config import NotificationSettings
from msashop.services.notification.db import notifications
from msashop.services.notification.domain import Sender
from msashop.services.notification.main import create_service
from tests.service_harness import ServiceHarness, running


class NotificationApp(ServiceHarness):
    async def listed(self, user_id: str, *roles: str) -> list[dict]:
        response = await self.client.get("/notifications", headers=self.auth_headers(user_id, *roles))
        assert response.status_code == 200
        return response.json()

    async def delivered_via(self) -> list[tuple[str, str]]:
        async with self.service.unit_of_work() as uow:
            rows = await uow.session.execute(
                sa.select(notifications.c.type, notifications.c.delivered_via).order_by(notifications.c.type)
            )
            return [(t, v) for t, v in rows]


Factory = Callable[..., Awaitable[NotificationApp]]


@pytest.fixture
async def start_notification(tmp_path: Path) -> AsyncIterator[Factory]:
    """Start the service (optionally with another sender or settings); stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(sender: Sender | None = None, **settings: object) -> NotificationApp:
            service = create_service(
                NotificationSettings.load("notification", data_dir=tmp_path, **settings),
                bus=InMemoryBus(),
                sender=sender,
            )
            return await stack.enter_async_context(running(service, harness=NotificationApp))

        yield start


@pytest.fixture
async def notification(start_notification: Factory) -> NotificationApp:
    return await start_notification()
