"""The order service's pact verified against the real user service (in-process, SQLite)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.user.config import UserSettings
from msashop.services.user.main import create_service
from tests.contract.matching import Params
from tests.contract.pacts import Interaction, given, interactions, verify_http
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def user(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    service = create_service(UserSettings.load("user", data_dir=tmp_path), bus=InMemoryBus())
    # The service checks the tokens it issues with its own key: sign test tokens with it too.
    async with running(service, key=service.app.state.token_issuer.key, harness=ServiceHarness) as harness:
        yield harness


async def a_customer_is_logged_in(user: ServiceHarness) -> Params:
    """A customer registers and logs in: the order forwards that customer's token."""
    credentials = {"email": "ada@example.com", "password": "correct-horse-42"}
    registered = await user.client.post("/auth/register", json={**credentials, "name": "Ada"})
    assert registered.status_code == 201, registered.text
    tokens = (await user.client.post("/auth/login", json=credentials)).json()
    return {"user_id": registered.json()["id"], "token": tokens["access_token"]}


STATES = {"a customer is registered and logged in": a_customer_is_logged_in}


@pytest.mark.parametrize("interaction", interactions("user"), ids=str)
async def test_user_honours_the_order_pact(user: ServiceHarness, interaction: Interaction) -> None:
    state = await given(STATES, interaction)(user)
    assert await verify_http(user.client, interaction, state) == []
