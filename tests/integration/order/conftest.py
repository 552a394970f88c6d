"""An order service on a temporary SQLite file, an in-memory bus, a small fake product service
and a fake shipping service answering `shipping.calculate` on that bus.

`Shop` drives it: place orders through the API, answer the saga's commands by publishing the
replies inventory and payment would, and read what the service queued on the bus.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.envelope import Envelope
from msashop.contracts.events import (
    Payload,
    PaymentCaptured,
    ShippingQuote,
    ShippingQuoteRequest,
    StockReserved,
)
from msashop.services.order.config import OrderSettings
from msashop.services.order.main import create_service
from tests.service_harness import ServiceHarness, running

PRODUCTS = {
    "p-mouse": {"id": "p-mouse", "name": "Mouse", "price": 19.99, "currency": "USD"},
    "p-pen": {"id": "p-pen", "name": "Pen", "price": 0.1, "currency": "USD"},
}


@dataclass
class FakeProducts:
    """Answers GET /products/batch like the product service; `down` makes it answer 503."""

    url: str = ""
    down: bool = False
    calls: list[str] = field(default_factory=list)

    async def batch(self, request: web.Request) -> web.Response:
        self.calls.append(request.query.get("ids", ""))
        if self.down:
            return web.json_response({"error": {"code": "unavailable", "message": "down"}}, status=503)
        ids = request.query.get("ids", "").split(",")
        return web.json_response([PRODUCTS[i] for i in ids if i in PRODUCTS])


@dataclass
class FakeShipping:
    """Answers `shipping.calculate` with a flat `cost`; `refuse` makes it answer an error."""

    cost: Decimal = Decimal("4.50")
    currency: str = "USD"
    refuse: bool = False
    requests: list[ShippingQuoteRequest] = field(default_factory=list)

    async def calculate(self, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(ShippingQuoteRequest.model_validate(body))
        if self.refuse:
            raise ValueError("cannot ship there")
        quote = ShippingQuote(
            cost=self.cost, currency=self.currency, service_level="standard", estimated_days=3
        )
        return quote.model_dump(mode="json")


def address() -> dict[str, str]:
    return {"name": "Ada", "line1": "1 Loop St", "city": "Leeds", "postal_code": "LS1", "country": "GB"}


def order_body(*items: tuple[str, int], token: str = "tok_visa") -> dict[str, Any]:
    lines = items or (("p-mouse", 2),)
    return {
        "items": [{"product_id": p, "quantity": q} for p, q in lines],
        "payment": {"token": token},
        "shipping_address": address(),
    }


class Shop(ServiceHarness):
    products: FakeProducts
    shipping: FakeShipping

    async def place(
        self, body: dict[str, Any] | None = None, *, user: str = "u1", key: str | None = None
    ) -> httpx.Response:
        headers = self.auth_headers(user)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post("/orders", json=body or order_body(), headers=headers)

    async def place_ok(self, body: dict[str, Any] | None = None, *, user: str = "u1") -> dict[str, Any]:
        response = await self.place(body, user=user)
        assert response.status_code == 202, response.text
        await self.settle()
        return response.json()

    async def order(self, order_id: str, user: str = "u1") -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}", headers=self.auth_headers(user))
        assert response.status_code == 200, response.text
        return response.json()

    async def saga(self, order_id: str, user: str = "u1") -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}/saga", headers=self.auth_headers(user))
        assert response.status_code == 200, response.text
        return response.json()

    async def reply(self, payload: Payload, *, event_id: str | None = None) -> None:
        """What inventory or payment would answer, delivered to the order service's handlers."""
        await self.deliver(payload, event_id=event_id)
        await self.settle()

    async def settle(self) -> None:
        """Wait until the relay has put every queued message on the bus."""
        assert self.service.relay is not None
        for _ in range(200):
            if await self.service.relay.pending() == 0:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the outbox did not drain")
        assert self.bus.failures == [], self.bus.failures

    def sent(self, subject: str, order_id: str) -> list[Envelope]:
        return [e for e in self.bus.published if e.type == subject and e.key == order_id]


def steps(saga: dict[str, Any]) -> list[tuple[str, str]]:
    """A saga answer's step log as (name, status) pairs."""
    return [(s["name"], s["status"]) for s in saga["steps"]]


async def reserved(shop: Shop) -> dict[str, Any]:
    """An order whose stock is reserved and whose charge is on its way."""
    order = await shop.place_ok()
    await shop.reply(StockReserved(order_id=order["id"]))
    return order


async def confirmed(shop: Shop) -> dict[str, Any]:
    """An order whose payment was captured (CONFIRMED; commit and notification are out)."""
    order = await reserved(shop)
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=Decimal("44.48")))
    return order


@pytest.fixture
async def products() -> AsyncIterator[FakeProducts]:
    fake = FakeProducts()
    app = web.Application()
    app.router.add_get("/products/batch", fake.batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def settings(tmp_path: Path, products: FakeProducts) -> OrderSettings:
    # The service finds the product service through the port map, as under the supervisor.
    (tmp_path / "ports.json").write_text(json.dumps({"product": products.url}))
    return OrderSettings.load("order", data_dir=tmp_path, saga_sweep_seconds=3600)


@pytest.fixture
async def shop(settings: OrderSettings, products: FakeProducts) -> AsyncIterator[Shop]:
    bus = InMemoryBus()
    shipping = FakeShipping()
    await bus.respond(ShippingQuoteRequest.subject, shipping.calculate)
    async with running(create_service(settings, bus=bus), harness=Shop) as harness:
        harness.products = products
        harness.shipping = shipping
        yield harness


@pytest.fixture
async def shop_without_shipping(settings: OrderSettings, products: FakeProducts) -> AsyncIterator[Shop]:
    """No shipping service answers on this bus."""
    async with running(create_service(settings, bus=InMemoryBus()), harness=Shop) as harness:
        harness.products = products
        yield harness
