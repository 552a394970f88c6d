"""The catalog API against a real SQLite database, with an in-memory bus."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.product.config import ProductSettings
from msashop.services.product.main import create_service
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    settings = ProductSettings.load("product", data_dir=tmp_path)
    async with running(create_service(settings, bus=InMemoryBus())) as harness:
        yield harness


async def test_catalog_is_seeded_once_and_paginated(product: ServiceHarness) -> None:
    client = product.client
    first = (await client.get("/products", params={"page": 1, "page_size": 10})).json()
    assert first["total"] == 32 and len(first["items"]) == 10
    last = (await client.get("/products", params={"page": 4, "page_size": 10})).json()
    assert len(last["items"]) == 2


async def test_search_and_category_filter(product: ServiceHarness) -> None:
    client = product.client
    books = (await client.get("/products", params={"category": "books"})).json()
    assert books["total"] == 6 and {p["category"] for p in books["items"]} == {"books"}
    found = (await client.get("/products", params={"q": "KEYBOARD"})).json()
    assert [p["sku"] for p in found["items"]] == ["EL-KEYBRD"]


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page_size": 101}])
async def test_page_out_of_range_is_422(product: ServiceHarness, params: dict[str, int]) -> None:
    client = product.client
    response = await client.get("/products", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_batch_get_returns_only_known_ids(product: ServiceHarness) -> None:
    client = product.client
    ids = [p["id"] for p in (await client.get("/products", params={"page_size": 3})).json()["items"]]
    found = (await client.get("/products/batch", params={"ids": ",".join([*ids, "missing"])})).json()
    assert sorted(p["id"] for p in found) == sorted(ids)


async def test_admin_creates_product_and_event_is_queued(product: ServiceHarness) -> None:
    service, client = product.service, product.client
    body = {"sku": "NEW-1", "name": "New", "category": "books", "price": 9.99, "initial_stock": 5}
    created = await client.post("/products", json=body, headers=product.auth_headers("u1", "admin"))
    assert created.status_code == 201
    assert (await client.get(f"/products/{created.json()['id']}")).json()["price"] == 9.99
    await service.relay.publish_pending()
    events = [e for e in service.bus.published if e.type == "product.created"]
    assert events[-1].data["sku"] == "NEW-1" and events[-1].data["initial_stock"] == 5


async def test_customer_cannot_change_catalog(product: ServiceHarness) -> None:
    client = product.client
    body = {"sku": "NEW-2", "name": "New", "category": "books", "price": 9.99}
    assert (await client.post("/products", json=body, headers=product.auth_headers("u1"))).status_code == 403
    assert (await client.post("/products", json=body)).status_code == 401


async def test_bad_product_input_changes_nothing(product: ServiceHarness) -> None:
    client = product.client
    admin = product.auth_headers("u1", "admin")
    for body in (
        {"sku": "X", "name": "x", "category": "c", "price": -1},
        {"sku": "X", "name": "x", "category": "c", "price": 1, "id": "chosen"},
        {"sku": "EL-MOUSE", "name": "dup", "category": "c", "price": 1},
    ):
        assert (await client.post("/products", json=body, headers=admin)).status_code in (409, 422)
    assert (await client.get("/products")).json()["total"] == 32


async def test_update_and_delete(product: ServiceHarness) -> None:
    client = product.client
    admin = product.auth_headers("u1", "admin")
    pid = (await client.get("/products")).json()["items"][0]["id"]
    updated = await client.put(f"/products/{pid}", json={"price": 1.5}, headers=admin)
    assert updated.status_code == 200 and updated.json()["price"] == 1.5
    assert (await client.delete(f"/products/{pid}", headers=admin)).status_code == 204
    assert (await client.get(f"/products/{pid}")).status_code == 404
