"""Shipping priced over the bus when an order is placed, and what happens when nobody answers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.order import main
from msashop.services.order.config import OrderSettings
from msashop.services.order.db import orders
from tests.service_harness import running

from .conftest import Shop, address, order_body

MIGRATIONS = Path(main.__file__).parent / "migrations"


async def _stored(shop: Shop) -> tuple[int, int]:
    """(orders, outbox messages) in the order database."""
    async with shop.service.unit_of_work() as uow:
        count = await uow.session.scalar(sa.select(sa.func.count()).select_from(orders))
    return int(count or 0), len(await shop.outbox_events())


async def test_the_quote_request_describes_the_parcel_and_the_total_includes_shipping(shop: Shop) -> None:
    shop.shipping.cost = Decimal("7.25")
    order = await shop.place_ok(order_body(("p-mouse", 2), ("p-pen", 1)))

    [request] = shop.shipping.requests
    assert (request.country, request.postal_code, request.currency) == ("GB", "LS1", "USD")
    assert [(i.product_id, i.quantity, i.weight_kg) for i in request.items] == [
        ("p-mouse", 2, None),
        ("p-pen", 1, None),
    ]
    assert request.subtotal == Decimal("40.08")
    assert (order["shipping_cost"], order["total"]) == (7.25, 47.33)
    assert (await shop.order(order["id"]))["shipping_cost"] == 7.25  # stored, not only answered
    [created] = shop.sent("order.created", order["id"])
    assert (created.data["shipping_cost"], created.data["total"]) == ("7.25", "47.33")


async def test_free_shipping_is_a_zero_cost_and_the_total_is_the_items(shop: Shop) -> None:
    shop.shipping.cost = Decimal("0")
    order = await shop.place_ok()
    assert (order["shipping_cost"], order["total"]) == (0.0, 39.98)


async def test_an_idempotent_replay_answers_the_first_quote_without_asking_again(shop: Shop) -> None:
    first = await shop.place(key="k-1")
    shop.shipping.cost = Decimal("99")
    again = await shop.place(key="k-1")
    assert again.status_code == 202 and again.json() == first.json()
    assert len(shop.shipping.requests) == 1 and first.json()["shipping_cost"] == 4.5


async def test_no_shipping_responder_is_503_shipping_unavailable_and_stores_nothing(
    shop_without_shipping: Shop,
) -> None:
    response = await shop_without_shipping.place()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "shipping_unavailable" and "did not answer within 2 s" in error["message"]
    assert await _stored(shop_without_shipping) == (0, 0)


async def test_a_refused_quote_is_503_and_stores_nothing(shop: Shop) -> None:
    shop.shipping.refuse = True
    response = await shop.place()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "shipping_unavailable"
    assert await _stored(shop) == (0, 0)


async def test_a_quote_in_another_currency_is_503_and_stores_nothing(shop: Shop) -> None:
    shop.shipping.currency = "EUR"
    response = await shop.place()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "shipping_unavailable"
    assert await _stored(shop) == (0, 0)


async def test_orders_placed_before_migration_0002_read_with_no_shipping(settings: OrderSettings) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    Path(settings.database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(command.upgrade, config, "0001")
    path = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO orders VALUES ('o-old', 'u1', 'CONFIRMED', NULL, 19.99, 'USD', ?, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (json.dumps(address()),),
        )
        db.execute("INSERT INTO order_lines VALUES ('o-old', 0, 'p-mouse', 'Mouse', 1, 19.99)")

    async with running(main.create_service(settings, bus=InMemoryBus()), harness=Shop) as shop:
        old = await shop.order("o-old")
    assert (old["shipping_cost"], old["total"]) == (0.0, 19.99)
