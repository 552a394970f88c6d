"""The shipping service answering `shipping.calculate` over the bus, and its health endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.bus.port import RpcError
from msashop.chassis.service import Service
from msashop.contracts.events import ShippingQuote
from msashop.services.shipping.config import ShippingSettings
from msashop.services.shipping.main import create_service


@pytest.fixture
async def shipping(tmp_path: Path) -> AsyncIterator[Service]:
    settings = ShippingSettings.load("shipping", data_dir=tmp_path, free_shipping_over=Decimal("100"))
    service = create_service(settings, bus=InMemoryBus())
    async with service.app.router.lifespan_context(service.app):
        yield service


def _request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "country": "GB",
        "postal_code": "LS1 4AP",
        "items": [
            {"product_id": "p1", "quantity": 2, "weight_kg": "1.25"},
            {"product_id": "p2", "quantity": 1},
        ],
        "subtotal": "39.98",
        "currency": "USD",
    }
    return body | changes


async def test_it_answers_a_quote_over_the_bus(shipping: Service) -> None:
    assert shipping.bus is not None
    reply = await shipping.bus.request("shipping.calculate", _request(), timeout=1)
    quote = ShippingQuote.model_validate(reply)
    # Europe: 14.99 + 2.00/kg x (2 x 1.25 + 0.5 default) kg
    assert quote == ShippingQuote(
        cost=Decimal("20.99"), currency="USD", service_level="standard", estimated_days=7
    )


async def test_the_threshold_comes_from_the_settings(shipping: Service) -> None:
    assert shipping.bus is not None
    reply = await shipping.bus.request(
        "shipping.calculate", _request(country="US", subtotal="100.00"), timeout=1
    )
    assert (reply["cost"], reply["estimated_days"]) == ("0.00", 3)


@pytest.mark.parametrize(
    "body",
    [
        {"country": "GB"},
        _request(currency="EUR"),
        _request(country="Britain"),
        _request(items=[]),
        _request(items=[{"product_id": "p1", "quantity": 0}]),
    ],
)
async def test_a_request_it_cannot_price_answers_an_error(shipping: Service, body: dict[str, Any]) -> None:
    assert shipping.bus is not None
    with pytest.raises(RpcError):
        await shipping.bus.request("shipping.calculate", body, timeout=1)


async def test_health_and_readiness_come_from_the_chassis(shipping: Service) -> None:
    transport = httpx.ASGITransport(app=shipping.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shipping") as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert health.status_code == 200 and health.json()["service"] == "shipping"
    assert ready.status_code == 200 and ready.json()["status"] == "up"
    assert list(ready.json()["checks"]) == ["broker"]  # no database, no downstream
    assert ready.json()["checks"]["broker"]["status"] == "up"
    assert shipping.db is None  # it stores nothing
