"""Migration 0004 moves the order-only idempotency keys into the chassis store: a key used before
the migration answers, after it, the bytes the service gave the first time (rendered by the
migration from the order's OrderPlaced), another body under it is still 422, and a downgrade
gives back the old table (user, key, request hash, order id)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.db import Database
from msashop.chassis.idempotent_requests import REPLAYED_HEADER
from msashop.contracts.events import PaymentCaptured, ShippingQuoteRequest, StockReserved
from msashop.services.order import main
from msashop.services.order.config import OrderSettings
from tests.service_harness import running

from .conftest import FakeProducts, FakeShipping, Shop, order_body

MIGRATIONS = Path(main.__file__).parent / "migrations"
BODY = order_body(("p-mouse", 2), ("p-pen", 3))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest, settings: OrderSettings) -> OrderSettings:
    if request.param == "sqlite":
        return settings
    url: str = request.getfixturevalue("postgres_url")
    return settings.model_copy(update={"database_url": url})


@asynccontextmanager
async def order_service(settings: OrderSettings, products: FakeProducts) -> AsyncIterator[Shop]:
    bus = InMemoryBus()
    await bus.respond(ShippingQuoteRequest.subject, FakeShipping().calculate)
    async with running(main.create_service(settings, bus=bus), harness=Shop) as shop:
        shop.products = products
        yield shop


async def migrate(settings: OrderSettings, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


async def rows(settings: OrderSettings, table: str) -> list[dict[str, object]]:
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            found = await session.execute(sa.text(f"SELECT * FROM {table}"))
            return [dict(row._mapping) for row in found]
    finally:
        await db.dispose()


async def test_a_key_from_before_the_migration_replays_the_first_answer_byte_for_byte(
    any_settings: OrderSettings, products: FakeProducts
) -> None:
    async with order_service(any_settings, products) as shop:
        first = await shop.place(BODY, key="k-old")
        assert first.status_code == 202
        await shop.settle()
        order_id = first.json()["id"]
        await shop.reply(StockReserved(order_id=order_id))
        await shop.reply(PaymentCaptured(order_id=order_id, payment_id="pay-1", amount=Decimal("64.77")))

    await migrate(any_settings, "0003", down=True)  # the order service as it was: its own table
    [old] = await rows(any_settings, "idempotency_keys")
    assert (old["user_id"], old["key"], old["order_id"]) == ("u1", "k-old", order_id)
    assert len(str(old["request_hash"])) == 64

    await migrate(any_settings, "head")
    [new] = await rows(any_settings, "idempotency_keys")
    assert (new["scope"], new["key"], new["operation"], new["state"], new["status_code"]) == (
        "u1",
        "k-old",
        "POST /orders",
        "done",
        202,
    )
    assert new["fingerprint"] == old["request_hash"]

    async with order_service(any_settings, products) as shop:
        replay = await shop.place(BODY, key="k-old")
        assert replay.status_code == 202 and replay.headers[REPLAYED_HEADER] == "true"
        assert replay.content == first.content  # PENDING, as first answered, though CONFIRMED now
        assert (await shop.order(order_id))["status"] == "CONFIRMED"
        other = await shop.place(order_body(("p-pen", 1)), key="k-old")
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
        assert len(products.calls) == 1  # only the very first request priced anything
