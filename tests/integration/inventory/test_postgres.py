"""The same rules on PostgreSQL, where concurrent reservations really run side by side."""

import asyncio
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import OrderLine, ProductCreated, ReserveStock
from msashop.services.inventory.config import InventorySettings
from msashop.services.inventory.db import InventoryRepository
from msashop.services.inventory.main import create_service
from tests.service_harness import running

pytestmark = pytest.mark.postgres


async def test_concurrent_orders_for_the_last_units_reserve_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    bus = InMemoryBus()
    service = create_service(
        InventorySettings.load("inventory", data_dir=tmp_path, database_url=postgres_url), bus=bus
    )
    async with running(service) as inventory:
        await inventory.deliver(
            ProductCreated(product_id="p1", sku="s", name="n", price="1.00", initial_stock=3)
        )
        orders = [
            ReserveStock(
                order_id=f"o{i}",
                idempotency_key=f"s{i}:reserve",
                lines=[OrderLine(product_id="p1", quantity=1)],
            )
            for i in range(8)
        ]
        await asyncio.gather(*(inventory.deliver(o) for o in orders))
        async with service.unit_of_work() as uow:
            repo = InventoryRepository(uow.session)
            stock = await repo.get_stock("p1")
            held = [o.order_id for o in orders if await repo.get_reservation(o.order_id)]
        await service.relay.publish_pending()
    assert bus.failures == []
    # Without row locks two orders would both read 3 and both write 2: more sold than there was.
    assert len(held) == 3
    assert stock is not None and (stock.available, stock.reserved) == (0, 3)
    failed = {e.data["order_id"] for e in bus.published if e.type == "inventory.reservation_failed"}
    assert failed == {o.order_id for o in orders} - set(held)
