"""The migrating path: for the same data the monolith answers `/products` exactly as the product
service does (status and body bytes), so the strangler router may send a request to either."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.legacy.conftest import Pair

QUERIES: list[dict[str, Any]] = [
    {},
    {"page": 2, "page_size": 10},
    {"page": 4, "page_size": 10},
    {"page": 99},
    {"page_size": 100},
    {"category": "books"},
    {"category": "books", "page_size": 4, "page": 2},
    {"category": "nothing-here"},
    {"q": "keyboard"},
    {"q": "KEY"},
    {"q": "a", "category": "electronics"},
    {"q": "%"},
    {"page": 0},
    {"page_size": 101},
    {"page": "x"},
]


async def same(pair: Pair, path: str, params: dict[str, Any] | None = None) -> bytes:
    new = await pair.product.client.get(path, params=params)
    old = await pair.legacy.client.get(path, params=params)
    assert (old.status_code, old.headers["content-type"]) == (new.status_code, new.headers["content-type"])
    assert old.content == new.content, (path, params)
    return new.content


async def test_the_seeded_catalog_is_answered_the_same(pair: Pair) -> None:
    listing = (await pair.product.client.get("/products", params={"page_size": 100})).json()
    assert listing["total"] == 32  # the seed, carried over by its product.created events
    for params in QUERIES:
        await same(pair, "/products", params)
    ids = [p["id"] for p in listing["items"]]
    for product_id in ids:
        await same(pair, f"/products/{product_id}")
    await same(pair, "/products/no-such-id")
    await same(pair, "/products/batch", {"ids": ",".join([*ids[:7], "no-such-id"])})
    await same(pair, "/products/batch", {"ids": ""})


async def test_changes_made_in_the_product_service_reach_the_monolith(pair: Pair) -> None:
    client = pair.product.client
    body = {
        "sku": "LEG-1",
        "name": "Aardvark lamp",
        "description": "A lamp shaped like an aardvark",
        "category": "home",
        "price": 19.9,
    }
    created = (await client.post("/products", json=body, headers=pair.admin)).json()
    other = {**body, "sku": "LEG-2", "name": "Zebra rug", "price": 120}
    gone = (await client.post("/products", json=other, headers=pair.admin)).json()
    await pair.sync()
    await same(pair, f"/products/{created['id']}")
    await same(pair, "/products", {"category": "home", "page_size": 100})

    change = {
        "name": "Anteater lamp",
        "price": 21.05,
        "description": "Now an anteater",
        "category": "lighting",
    }
    assert (
        await client.put(f"/products/{created['id']}", json=change, headers=pair.admin)
    ).status_code == 200
    assert (await client.delete(f"/products/{gone['id']}", headers=pair.admin)).status_code == 204
    await pair.sync()

    moved = await same(pair, f"/products/{created['id']}")
    assert b'"category":"lighting"' in moved and b'"price":21.05' in moved
    await same(pair, f"/products/{gone['id']}")  # 404 on both
    for params in ({"category": "lighting"}, {"category": "home"}, {"q": "zebra"}, {"page_size": 100}):
        await same(pair, "/products", params)
    await same(pair, "/products/batch", {"ids": f"{created['id']},{gone['id']}"})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_the_monolith_takes_no_catalog_writes(pair: Pair, method: str) -> None:
    """Writes belong to the product service; the router must send them there, never here."""
    answer = await pair.legacy.client.request(method, "/products/x", headers=pair.admin, json={})
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"
