"""The order service's pact verified against the real notification service (in-process, SQLite,
commands and replies on the in-memory bus)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import UserRegistered
from msashop.services.notification.config import NotificationSettings
from msashop.services.notification.domain import DeliveredVia, Email, Sender
from msashop.services.notification.main import create_service
from tests.contract.pacts import Interaction, given, interactions, verify_command
from tests.service_harness import ServiceHarness, running

Start = Callable[[Sender | None], Awaitable[ServiceHarness]]


class MailServerDown:
    async def send(self, email: Email) -> DeliveredVia:
        raise ConnectionRefusedError("mail server down")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Starts the service with a given mail sender (None: its default); stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(sender: Sender | None) -> ServiceHarness:
            settings = NotificationSettings.load("notification", data_dir=tmp_path)
            service = create_service(settings, bus=InMemoryBus(), sender=sender)
            return await stack.enter_async_context(running(service))

        yield start


def registered(sender: Sender | None) -> Callable[[Start], Awaitable[ServiceHarness]]:
    async def state(start: Start) -> ServiceHarness:
        notification = await start(sender)
        await notification.deliver(UserRegistered(user_id="u-1", email="ada@example.com", name="Ada"))
        return notification

    return state


STATES = {
    "user u-1 is registered": registered(None),
    "user u-1 is registered and the mail server is down": registered(MailServerDown()),
}


@pytest.mark.parametrize("interaction", interactions("notification"), ids=str)
async def test_notification_honours_the_order_pact(start: Start, interaction: Interaction) -> None:
    notification = await given(STATES, interaction)(start)
    assert await verify_command(notification, interaction, {}) == []
