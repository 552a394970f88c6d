"""API composition of an order against fake user and product services over real HTTP: one batch
call per service, both at once, and fallbacks (`degraded`) when a service fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.errors import Unprocessable
from msashop.chassis.service_client import ServiceClient
from msashop.services.order.composition import compose, parse_expand
from tests.conftest import free_port

AUTH = "Bearer the-callers-token"
USERS = {"u1": {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"}}
CATALOG = {
    f"p{n}": {
        "id": f"p{n}",
        "sku": f"SKU-{n}",
        "name": f"Product {n}",
        "description": "",
        "category": "misc",
        "price": float(n),
        "currency": "USD",
    }
    for n in range(1, 13)
}


@dataclass
class FakeBatch:
    """Answers GET <path>?ids=... from `records`, counting calls; `status` makes it fail,
    `delay` makes it slow."""

    records: dict[str, dict[str, Any]]
    url: str = ""
    status: int = 200
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    async def batch(self, request: web.Request) -> web.Response:
        self.calls.append(request.query.get("ids", ""))
        self.authorizations.append(request.headers.get("Authorization"))
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": {"code": "boom", "message": "boom"}}, status=self.status)
        ids = request.query.get("ids", "").split(",")
        return web.json_response([self.records[i] for i in ids if i in self.records])


async def serve(fake: FakeBatch, path: str) -> web.AppRunner:
    app = web.Application()
    app.router.add_get(path, fake.batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.fixture
async def users() -> AsyncIterator[FakeBatch]:
    fake = FakeBatch(USERS)
    runner = await serve(fake, "/users/batch")
    yield fake
    await runner.cleanup()


@pytest.fixture
async def catalog() -> AsyncIterator[FakeBatch]:
    fake = FakeBatch(CATALOG)
    runner = await serve(fake, "/products/batch")
    yield fake
    await runner.cleanup()


@pytest.fixture
async def client(users: FakeBatch, catalog: FakeBatch) -> AsyncIterator[ServiceClient]:
    client = ServiceClient(StaticDiscovery({"user": users.url, "product": catalog.url}), caller="order")
    yield client
    await client.close()


def an_order(*product_ids: str, user_id: str = "u1") -> dict[str, Any]:
    return {
        "id": "o1",
        "user_id": user_id,
        "status": "CONFIRMED",
        "items": [
            {"product_id": p, "name": f"Line {p}", "quantity": 1, "unit_price": 1.0, "line_total": 1.0}
            for p in product_ids
        ],
        "total": float(len(product_ids)),
    }


BOTH = frozenset({"user", "products"})
TWELVE = [f"p{n}" for n in range(1, 13)]


async def test_one_batch_call_per_service_for_many_lines(
    client: ServiceClient, users: FakeBatch, catalog: FakeBatch
) -> None:
    order = an_order(*TWELVE)

    composed = await compose(order, BOTH, client, AUTH)

    assert users.calls == ["u1"]
    assert len(catalog.calls) == 1
    assert sorted(catalog.calls[0].split(",")) == sorted(TWELVE)
    assert users.authorizations == [AUTH]  # /users/batch needs the caller's identity
    assert composed["user"] == {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"}
    assert [i["product"] for i in composed["items"]] == [CATALOG[p] for p in TWELVE]
    assert [i["name"] for i in composed["items"]] == [f"Line {p}" for p in TWELVE]
    assert composed["degraded"] is False
    assert composed["total"] == order["total"] and "user" not in order  # the input is left alone


async def test_a_product_on_several_lines_is_asked_for_once(
    client: ServiceClient, catalog: FakeBatch
) -> None:
    composed = await compose(an_order("p1", "p2", "p1"), frozenset({"products"}), client, AUTH)

    assert catalog.calls == ["p1,p2"]
    assert [i["product"]["id"] for i in composed["items"]] == ["p1", "p2", "p1"]


async def test_both_services_are_called_at_the_same_time(
    client: ServiceClient, users: FakeBatch, catalog: FakeBatch
) -> None:
    users.delay = catalog.delay = 0.3

    started = time.perf_counter()
    composed = await compose(an_order(*TWELVE), BOTH, client, AUTH)
    elapsed = time.perf_counter() - started

    assert composed["degraded"] is False
    assert 0.3 <= elapsed < 0.5, elapsed  # one after the other would take 0.6 s


async def test_user_service_down_gives_the_fallback_user(catalog: FakeBatch) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = ServiceClient(StaticDiscovery({"user": nobody, "product": catalog.url}))
    try:
        composed = await compose(an_order("p1", "p2"), BOTH, client, AUTH)
    finally:
        await client.close()

    assert composed["user"] == {"id": "u1", "name": "Unknown User", "email": None}
    assert composed["degraded"] is True
    assert [i["product"] for i in composed["items"]] == [CATALOG["p1"], CATALOG["p2"]]


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_user_service_error_gives_the_fallback_user(
    client: ServiceClient, users: FakeBatch, status: int
) -> None:
    users.status = status

    composed = await compose(an_order("p1"), BOTH, client, AUTH)

    # The client retries a GET answered 503 (3 attempts); a 500 or a 401 would answer the same again.
    assert users.calls == ["u1"] * (3 if status == 503 else 1)
    assert composed["user"] == {"id": "u1", "name": "Unknown User", "email": None}
    assert composed["degraded"] is True
    assert composed["items"][0]["product"] == CATALOG["p1"]


async def test_a_slow_user_service_is_not_waited_for(client: ServiceClient, users: FakeBatch) -> None:
    users.delay = 2.0

    started = time.perf_counter()
    composed = await compose(an_order("p1"), BOTH, client, AUTH, timeout=0.2)
    elapsed = time.perf_counter() - started

    assert composed["user"]["name"] == "Unknown User"
    assert composed["degraded"] is True
    assert composed["items"][0]["product"] == CATALOG["p1"]
    assert elapsed < 1.0, elapsed


async def test_product_service_down_keeps_the_lines_without_details(
    client: ServiceClient, catalog: FakeBatch
) -> None:
    catalog.status = 503

    composed = await compose(an_order("p1", "p2"), BOTH, client, AUTH)

    assert [(i["name"], i["product"]) for i in composed["items"]] == [("Line p1", None), ("Line p2", None)]
    assert composed["user"]["name"] == "Ada Lovelace"
    assert composed["degraded"] is True


async def test_records_the_services_do_not_know_get_fallbacks_without_degrading(
    client: ServiceClient,
) -> None:
    composed = await compose(an_order("p1", "p-gone", user_id="u-gone"), BOTH, client, AUTH)

    assert composed["user"] == {"id": "u-gone", "name": "Unknown User", "email": None}
    assert [i["product"] for i in composed["items"]] == [CATALOG["p1"], None]
    assert composed["degraded"] is False


async def test_only_what_is_asked_for_is_fetched(
    client: ServiceClient, users: FakeBatch, catalog: FakeBatch
) -> None:
    composed = await compose(an_order("p1"), frozenset({"user"}), client, AUTH)

    assert users.calls == ["u1"] and catalog.calls == []
    assert "product" not in composed["items"][0]
    assert composed["degraded"] is False


async def test_no_expand_returns_the_order_as_is(
    client: ServiceClient, users: FakeBatch, catalog: FakeBatch
) -> None:
    order = an_order("p1")

    assert await compose(order, frozenset(), client, AUTH) == order
    assert users.calls == [] and catalog.calls == []


async def test_an_unknown_expand_value_is_422(
    client: ServiceClient, users: FakeBatch, catalog: FakeBatch
) -> None:
    with pytest.raises(Unprocessable) as raised:
        await compose(an_order("p1"), frozenset({"user", "payments"}), client, AUTH)
    assert raised.value.status_code == 422
    assert "payments" in raised.value.message
    with pytest.raises(Unprocessable):
        parse_expand("user,reviews")
    assert users.calls == [] and catalog.calls == []
