"""The order service's pact verified against the real inventory service (in-process, SQLite,
commands and replies on the in-memory bus)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import OrderLine, ReserveStock
from msashop.services.inventory.config import InventorySettings
from msashop.services.inventory.main import create_service
from tests.contract.matching import Params
from tests.contract.pacts import Interaction, given, interactions, verify_command
from tests.integration.inventory.conftest import Inventory
from tests.service_harness import running


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    service = create_service(InventorySettings.load("inventory", data_dir=tmp_path), bus=InMemoryBus())
    async with running(service, harness=Inventory) as harness:
        yield harness


def in_stock(quantity: int) -> Callable[[Inventory], Awaitable[Params]]:
    async def state(inventory: Inventory) -> Params:
        await inventory.add_product("p-1", quantity)
        return {}

    return state


async def reserved(inventory: Inventory) -> Params:
    await inventory.add_product("p-1", 5)
    lines = [OrderLine(product_id="p-1", quantity=2)]
    await inventory.deliver(ReserveStock(order_id="o-1", lines=lines, idempotency_key="saga-1:reserve"))
    return {}


STATES = {
    "product p-1 has 5 in stock": in_stock(5),
    "product p-1 has 1 in stock": in_stock(1),
    "order o-1 holds a reservation": reserved,
}


@pytest.mark.parametrize("interaction", interactions("inventory"), ids=str)
async def test_inventory_honours_the_order_pact(inventory: Inventory, interaction: Interaction) -> None:
    state = await given(STATES, interaction)(inventory)
    assert await verify_command(inventory, interaction, state) == []
