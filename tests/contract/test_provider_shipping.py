"""The order service's pact verified against the real shipping service (in-process, its bus
request/reply on the in-memory bus)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.shipping.config import ShippingSettings
from msashop.services.shipping.main import create_service
from tests.contract.matching import Params
from tests.contract.pacts import Interaction, given, interactions, verify_rpc
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def shipping(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    service = create_service(ShippingSettings.load("shipping", data_dir=tmp_path), bus=InMemoryBus())
    async with running(service, harness=ServiceHarness) as harness:
        yield harness


async def priced(shipping: ServiceHarness) -> Params:
    return {}  # the rate table ships with the service


STATES = {"shipping is priced": priced}


@pytest.mark.parametrize("interaction", interactions("shipping"), ids=str)
async def test_shipping_honours_the_order_pact(shipping: ServiceHarness, interaction: Interaction) -> None:
    state = await given(STATES, interaction)(shipping)
    assert await verify_rpc(shipping.bus, interaction, state) == []
