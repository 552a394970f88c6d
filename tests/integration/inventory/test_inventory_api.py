"""The stock API, with tokens signed like the user service signs them."""

import pytest
import sqlalchemy as sa

from tests.integration.inventory.conftest import Inventory


async def test_stock_level_of_an_unknown_product_is_404(inventory: Inventory) -> None:
    response = await inventory.client.get("/inventory/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_batch_returns_the_known_products(inventory: Inventory) -> None:
    await inventory.add_product("p1", 1)
    await inventory.add_product("p2", 2)
    found = (await inventory.client.get("/inventory", params={"ids": "p1,p2,ghost"})).json()
    assert sorted((s["product_id"], s["available"]) for s in found) == [("p1", 1), ("p2", 2)]
    assert (await inventory.client.get("/inventory")).status_code == 422


async def test_admin_restocks(inventory: Inventory) -> None:
    await inventory.add_product("p1", 1)
    response = await inventory.client.put(
        "/inventory/p1", json={"available": 50}, headers=inventory.auth_headers("u1", "admin")
    )
    assert response.status_code == 200
    assert response.json() == {"product_id": "p1", "available": 50, "reserved": 0}
    missing = await inventory.client.put(
        "/inventory/ghost", json={"available": 5}, headers=inventory.auth_headers("u1", "admin")
    )
    assert missing.status_code == 404


async def test_only_admins_restock_and_bad_input_changes_nothing(inventory: Inventory) -> None:
    await inventory.add_product("p1", 1)
    put = inventory.client.put
    assert (await put("/inventory/p1", json={"available": 5})).status_code == 401
    assert (
        await put("/inventory/p1", json={"available": 5}, headers=inventory.auth_headers("u1"))
    ).status_code == 403
    admin = inventory.auth_headers("u1", "admin")
    for body in ({"available": -1}, {"available": 5, "reserved": 0}, {}):
        assert (await put("/inventory/p1", json=body, headers=admin)).status_code == 422
    assert await inventory.level("p1") == (1, 0)


async def test_database_refuses_negative_stock(inventory: Inventory) -> None:
    await inventory.add_product("p1", 1)
    async with inventory.service.unit_of_work() as uow:
        with pytest.raises(sa.exc.IntegrityError):
            await uow.session.execute(sa.text("UPDATE stock SET available = -1 WHERE product_id = 'p1'"))
    assert await inventory.level("p1") == (1, 0)
