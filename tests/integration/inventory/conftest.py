"""An inventory service on a temporary SQLite file, fed through an in-memory bus."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import ProductCreated
from msashop.services.inventory.config import InventorySettings
from msashop.services.inventory.main import create_service
from tests.service_harness import ServiceHarness, running


class Inventory(ServiceHarness):
    async def add_product(self, product_id: str, initial_stock: int) -> None:
        await self.deliver(
            ProductCreated(
                product_id=product_id,
                sku=product_id,
                name=product_id,
                price="1.00",
                initial_stock=initial_stock,
            )
        )

    async def level(self, product_id: str) -> tuple[int, int]:
        body = (await self.client.get(f"/inventory/{product_id}")).json()
        return body["available"], body["reserved"]


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    service = create_service(InventorySettings.load("inventory", data_dir=tmp_path), bus=InMemoryBus())
    async with running(service, harness=Inventory) as harness:
        yield harness
