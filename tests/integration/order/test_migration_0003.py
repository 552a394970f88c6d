"""Migration 0003 turns orders stored the old way (rows in orders, order_lines, sagas) into event
streams: the store then holds each order's history, the service reads the orders as before, the
analytics it computed agree with a rebuild from the events, and the orders keep working."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.db import Database
from msashop.chassis.event_store import EventStore
from msashop.contracts.events import ShippingQuoteRequest
from msashop.services.order import main
from msashop.services.order.config import OrderSettings
from msashop.services.order.db import OrderRepository, OrderViews
from tests.service_harness import running

from .conftest import FakeProducts, FakeShipping, Shop, address

MIGRATIONS = Path(main.__file__).parent / "migrations"
ADMIN = ("boss", "admin")
JAN1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
JAN2 = datetime(2026, 1, 2, 23, 30, tzinfo=UTC)
FAR = datetime(2099, 1, 1, tzinfo=UTC)  # no saga is overdue when the service starts

# The tables as revision 0002 left them (no version column, no event store).
old_orders = sa.table(
    "orders",
    *(sa.column(c) for c in ("id", "user_id", "status", "status_reason", "currency")),
    sa.column("total", sa.Numeric(12, 2)),
    sa.column("shipping_cost", sa.Numeric(12, 2)),
    sa.column("shipping_address", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
old_lines = sa.table(
    "order_lines",
    *(sa.column(c) for c in ("order_id", "position", "product_id", "name", "quantity")),
    sa.column("unit_price", sa.Numeric(12, 2)),
)
old_sagas = sa.table(
    "sagas",
    *(sa.column(c) for c in ("id", "order_id", "status", "step", "payment_token", "payment_id")),
    sa.column("steps", sa.JSON),
    sa.column("deadline_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _steps(*done: str, failed: str | None = None) -> list[dict[str, Any]]:
    steps = [
        {
            "name": n,
            "status": "COMPLETED",
            "started_at": JAN1.isoformat(),
            "finished_at": JAN1.isoformat(),
            "error": None,
        }
        for n in done
    ]
    if failed:
        steps.append(
            {
                "name": failed,
                "status": "FAILED",
                "started_at": JAN1.isoformat(),
                "finished_at": JAN1.isoformat(),
                "error": "card_declined",
            }
        )
    return steps


@dataclass(frozen=True)
class OldOrder:
    id: str
    status: str
    reason: str | None
    lines: list[tuple[str, str, int, str]]  # product id, name, quantity, unit price
    shipping: str
    created: datetime
    updated: datetime
    saga_status: str
    payment_id: str | None
    steps: list[dict[str, Any]]


OLD = [
    OldOrder(
        "o-confirmed",
        "CONFIRMED",
        None,
        [("p-mouse", "Mouse", 2, "19.99")],
        "4.50",
        JAN1,
        JAN1.replace(minute=5),
        "COMPLETED",
        "pay-old",
        _steps("CREATE_ORDER", "RESERVE_INVENTORY", "PROCESS_PAYMENT", "COMMIT_INVENTORY"),
    ),
    OldOrder(
        "o-cancelled",
        "CANCELLED",
        "payment_declined",
        [("p-pen", "Pen", 3, "0.10"), ("p-mouse", "Mouse", 1, "19.99")],
        "0",
        JAN2,
        JAN2.replace(minute=45),
        "FAILED",
        None,
        _steps("CREATE_ORDER", "RESERVE_INVENTORY", "RELEASE_INVENTORY", failed="PROCESS_PAYMENT"),
    ),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_settings(request: pytest.FixtureRequest, settings: OrderSettings) -> OrderSettings:
    """The `settings` fixture's service, on SQLite or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return settings
    url: str = request.getfixturevalue("postgres_url")  # fails instead of skipping when CI=true
    return settings.model_copy(update={"database_url": url})


def _alembic(settings: OrderSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    return config


async def _database_at_0002_with_old_orders(settings: OrderSettings) -> None:
    db = Database(settings.database_url)  # creates the SQLite file's folder
    try:
        await asyncio.to_thread(command.upgrade, _alembic(settings), "0002")
        async with db.session() as session, session.begin():
            for old in OLD:
                items = sum(Decimal(price) * quantity for _, _, quantity, price in old.lines)
                await session.execute(
                    sa.insert(old_orders).values(
                        id=old.id,
                        user_id="u1",
                        status=old.status,
                        status_reason=old.reason,
                        currency="USD",
                        total=items + Decimal(old.shipping),
                        shipping_cost=Decimal(old.shipping),
                        shipping_address=address(),
                        created_at=old.created,
                        updated_at=old.updated,
                    )
                )
                for position, (product_id, name, quantity, price) in enumerate(old.lines):
                    await session.execute(
                        sa.insert(old_lines).values(
                            order_id=old.id,
                            position=position,
                            product_id=product_id,
                            name=name,
                            quantity=quantity,
                            unit_price=Decimal(price),
                        )
                    )
                await session.execute(
                    sa.insert(old_sagas).values(
                        id=f"s-{old.id}",
                        order_id=old.id,
                        status=old.saga_status,
                        step=old.steps[-1]["name"],
                        payment_token=None,
                        payment_id=old.payment_id,
                        steps=old.steps,
                        deadline_at=FAR,
                        updated_at=old.updated,
                    )
                )
    finally:
        await db.dispose()


async def _upgraded(settings: OrderSettings) -> dict[str, list[tuple[int, str, dict[str, Any]]]]:
    """Upgrade to head; each order's stored events as (version, type, data)."""
    await asyncio.to_thread(command.upgrade, _alembic(settings), "head")
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            events = await EventStore(session).read_all()
    finally:
        await db.dispose()
    assert all(e.metadata == {"migrated_from": "orders table (revision 0003)"} for e in events)
    histories: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for e in events:
        histories.setdefault(e.aggregate_id, []).append((e.version, e.type, e.data))
    return histories


@pytest.fixture
async def migrated(
    old_settings: OrderSettings,
) -> AsyncIterator[tuple[OrderSettings, dict[str, list[tuple[int, str, dict[str, Any]]]]]]:
    await _database_at_0002_with_old_orders(old_settings)
    yield old_settings, await _upgraded(old_settings)


async def test_each_old_order_becomes_its_history(
    migrated: tuple[OrderSettings, dict[str, list[tuple[int, str, dict[str, Any]]]]],
) -> None:
    _, histories = migrated
    placed_confirmed = {
        "user_id": "u1",
        "lines": [{"product_id": "p-mouse", "name": "Mouse", "quantity": 2, "unit_price": "19.99"}],
        "currency": "USD",
        "shipping_address": address(),
        "shipping_cost": "4.50",
        "at": JAN1.isoformat(),
    }
    assert histories["o-confirmed"] == [
        (1, "OrderPlaced", placed_confirmed),
        (2, "OrderConfirmed", {"payment_id": "pay-old", "at": JAN1.replace(minute=5).isoformat()}),
    ]
    [(v1, placed, data), (v2, cancelled, reason)] = histories["o-cancelled"]
    assert (v1, placed, v2, cancelled) == (1, "OrderPlaced", 2, "OrderCancelled")
    assert [(line["product_id"], line["unit_price"]) for line in data["lines"]] == [
        ("p-pen", "0.10"),
        ("p-mouse", "19.99"),
    ]
    assert (data["shipping_cost"], data["at"]) == ("0.00", JAN2.isoformat())
    assert reason == {"reason": "payment_declined", "at": JAN2.replace(minute=45).isoformat()}


async def test_the_service_reads_the_migrated_orders_as_they_were(
    migrated: tuple[OrderSettings, dict[str, list[tuple[int, str, dict[str, Any]]]]],
    products: FakeProducts,
) -> None:
    settings, _ = migrated
    async with _service(settings, products) as shop:
        confirmed = await shop.order("o-confirmed")
        cancelled = await shop.order("o-cancelled")
        listed = (await shop.client.get("/orders", headers=shop.auth_headers("u1"))).json()
        analytics = await _analytics(shop)

        # Read side: the rows as they were stored, now at the version of their history.
        assert (confirmed["status"], confirmed["status_reason"], confirmed["total"]) == (
            "CONFIRMED",
            None,
            44.48,
        )
        assert [(i["product_id"], i["quantity"], i["line_total"]) for i in confirmed["items"]] == [
            ("p-mouse", 2, 39.98)
        ]
        assert (confirmed["created_at"], confirmed["updated_at"]) == (
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:05:00Z",
        )
        assert (cancelled["status"], cancelled["status_reason"], cancelled["total"]) == (
            "CANCELLED",
            "payment_declined",
            20.29,
        )
        assert [o["id"] for o in listed["items"]] == ["o-cancelled", "o-confirmed"]  # newest first

        # Write side: the fold of the events is the same order.
        async with shop.service.unit_of_work() as uow:
            views = {v.id: v for v in await OrderViews(uow.session).all()}
            for order_id, view in views.items():
                order = await OrderRepository(uow.session).get(order_id)
                assert order is not None
                assert (order.status.value, order.status_reason, order.total, order.version) == (
                    view.status,
                    view.status_reason,
                    view.total,
                    view.version,
                )
                assert (order.created_at, order.updated_at) == (view.created_at, view.updated_at)
            assert {v.id: v.version for v in views.values()} == {"o-confirmed": 2, "o-cancelled": 2}

        # The analytics the migration computed are those of the orders ...
        assert analytics["by_status"] == {
            "PENDING": {"count": 0, "revenue": 0.0},
            "CONFIRMED": {"count": 1, "revenue": 44.48},
            "SHIPPED": {"count": 0, "revenue": 0.0},
            "CANCELLED": {"count": 1, "revenue": 20.29},
        }
        assert analytics["by_day"] == [
            {"day": "2026-01-01", "count": 1, "revenue": 44.48},
            {"day": "2026-01-02", "count": 1, "revenue": 0.0},
        ]
        # ... and a rebuild from the events changes nothing anyone reads.
        rebuilt = await shop.client.post("/admin/projections/rebuild", headers=shop.auth_headers(*ADMIN))
        assert rebuilt.json()["events"] == 4 and rebuilt.json()["orders"] == 2
        assert await _analytics(shop) == analytics
        assert await shop.order("o-confirmed") == confirmed
        assert await shop.order("o-cancelled") == cancelled

        # The migrated orders go on: shipping appends version 3 after the two migrated events.
        shipped = await shop.client.post("/orders/o-confirmed/ship", headers=shop.auth_headers(*ADMIN))
        assert (shipped.status_code, shipped.json()["status"]) == (202, "SHIPPED")
        assert (await shop.order("o-confirmed"))["status"] == "SHIPPED"
        refused = await shop.client.post("/orders/o-cancelled/cancel", headers=shop.auth_headers("u1"))
        assert refused.status_code == 409
        assert (await _analytics(shop))["by_status"]["SHIPPED"] == {"count": 1, "revenue": 44.48}


async def _analytics(shop: Shop) -> dict[str, Any]:
    response = await shop.client.get("/orders/analytics", headers=shop.auth_headers(*ADMIN))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@asynccontextmanager
async def _service(settings: OrderSettings, products: FakeProducts) -> AsyncIterator[Shop]:
    """The order service started on the migrated database (the `shop` fixture's wiring)."""
    bus = InMemoryBus()
    await bus.respond(ShippingQuoteRequest.subject, FakeShipping().calculate)
    async with running(main.create_service(settings, bus=bus), harness=Shop) as shop:
        shop.products = products
        yield shop
