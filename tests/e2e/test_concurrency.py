"""Many customers at once on a few products: every saga ends, and stock adds up exactly."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TERMINAL, ShopClient, User

pytestmark = pytest.mark.e2e

USERS = 10
ORDERS = 50


async def place(client: httpx.AsyncClient, shop: ShopClient, user: User, items: list[tuple[str, int]]) -> str:
    response = await client.post(
        "/api/orders",
        json=shop.order_body(items),
        headers={**user.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    order_id: str = response.json()["id"]
    return order_id


async def final_state(
    client: httpx.AsyncClient, user: User, order_id: str, deadline: float
) -> dict[str, Any]:
    last: object = None
    while time.monotonic() < deadline:
        response = await client.get(f"/api/orders/{order_id}", headers=user.headers)
        if response.status_code == 200:
            last = response.json()
            if last["status"] in TERMINAL:  # type: ignore[index]
                return last  # type: ignore[return-value]
        else:
            last = f"{response.status_code} {response.text[:200]}"
        await asyncio.sleep(0.5)
    raise AssertionError(f"order {order_id} not terminal in time; last answer: {last}")


async def test_fifty_concurrent_orders_all_end_and_stock_adds_up(shop: ShopClient) -> None:
    users = [shop.register_and_login(f"Load {n}") for n in range(USERS)]
    products = shop.products_in_stock(3, at_least=30)
    start = {p["id"]: p["stock"] for p in products}
    # The first product is oversubscribed on purpose: together its orders want more than it has,
    # so some must end out_of_stock while the rest are confirmed, and none may oversell.
    scarce = products[0]["id"]
    scarce_orders = math.ceil(ORDERS / 3)
    scarce_quantity = math.ceil(1.5 * start[scarce]["available"] / scarce_orders)
    plan: list[tuple[User, list[tuple[str, int]]]] = []
    for n in range(ORDERS):
        product = products[n % 3]["id"]
        quantity = scarce_quantity if product == scarce else 1 + n % 2
        plan.append((users[n % USERS], [(product, quantity)]))

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=30, limits=limits) as client:
        order_ids = await asyncio.gather(*(place(client, shop, user, items) for user, items in plan))
        deadline = time.monotonic() + 60
        finals = await asyncio.gather(
            *(
                final_state(client, user, oid, deadline)
                for (user, _), oid in zip(plan, order_ids, strict=True)
            )
        )

    confirmed: Counter[str] = Counter()
    outcomes = Counter((f["status"], f.get("status_reason")) for f in finals)
    for final, (_, items) in zip(finals, plan, strict=True):
        if final["status"] == "CONFIRMED":
            for product_id, quantity in items:
                confirmed[product_id] += quantity
        else:
            assert final["status_reason"] == "out_of_stock", final
    assert outcomes[("CANCELLED", "out_of_stock")] > 0, outcomes
    assert confirmed[scarce] <= start[scarce]["available"]
    for product_id, before in start.items():
        stock = shop.wait_for_stock(
            product_id, before["available"] - confirmed[product_id], before["reserved"]
        )
        assert stock["available"] == before["available"] - confirmed[product_id], (product_id, stock, before)
        assert stock["reserved"] == before["reserved"], (product_id, stock, before)
