"""The order service's pact verified against the real product service (in-process, SQLite)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.product.config import ProductSettings
from msashop.services.product.main import create_service
from tests.contract.matching import Params
from tests.contract.pacts import Interaction, given, interactions, verify_http
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    settings = ProductSettings.load("product", data_dir=tmp_path)
    async with running(create_service(settings, bus=InMemoryBus()), harness=ServiceHarness) as harness:
        yield harness


async def a_product_exists(product: ServiceHarness) -> Params:
    """The service seeds its catalog on start; any product of it will do."""
    [first] = (await product.client.get("/products", params={"page_size": 1})).json()["items"]
    return {"known_id": first["id"]}


STATES = {"a product exists": a_product_exists}


@pytest.mark.parametrize("interaction", interactions("product"), ids=str)
async def test_product_honours_the_order_pact(product: ServiceHarness, interaction: Interaction) -> None:
    state = await given(STATES, interaction)(product)
    assert await verify_http(product.client, interaction, state) == []
