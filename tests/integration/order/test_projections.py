"""The read models are a projection of the event store: whatever happens to their tables, a
rebuild from the events gives back every read the API answered; a catch-up applies the events a
view is missing, once; and a cancel that loses a race with another writer is decided again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.event_store import ConcurrencyConflict, EventStore, projection_checkpoints
from msashop.contracts.events import (
    PaymentCaptured,
    PaymentDeclined,
    ShippingQuoteRequest,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.order.config import OrderSettings
from msashop.services.order.db import (
    OrderRepository,
    OrderViews,
    SagaRepository,
    order_lines,
    order_stats_by_day,
    order_stats_by_status,
    orders,
)
from msashop.services.order.domain import (
    Order,
    OrderLine,
    OrderStatus,
    ShippingAddress,
    Step,
    event_from,
)
from msashop.services.order.handlers import store
from msashop.services.order.main import create_service
from msashop.services.order.projections import OrdersProjection
from msashop.services.order.read_model import Analytics
from tests.service_harness import running

from . import conftest
from .conftest import Shop, order_body

ADMIN = ("boss", "admin")
REBUILD = "/admin/projections/rebuild"  # the service's admin API (the gateway's /api/admin/projections/order)
USERS = ("u1", "u2", "u3")


# --- driving orders ----------------------------------------------------------------------------
async def _reserved(shop: Shop, body: dict[str, Any] | None, user: str) -> dict[str, Any]:
    order = await shop.place_ok(body, user=user)
    await shop.reply(StockReserved(order_id=order["id"]))
    return order


async def _confirmed(shop: Shop, body: dict[str, Any] | None = None, user: str = "u1") -> dict[str, Any]:
    order = await _reserved(shop, body, user)
    await shop.reply(
        PaymentCaptured(order_id=order["id"], payment_id=f"pay-{order['id']}", amount=Decimal("1"))
    )
    return order


async def _post(shop: Shop, order_id: str, action: str, *who: str) -> None:
    response = await shop.client.post(f"/orders/{order_id}/{action}", headers=shop.auth_headers(*who))
    assert response.status_code == 202, response.text
    await shop.settle()


async def _drive(shop: Shop) -> dict[str, tuple[str, str]]:
    """Ten orders of three users down every path; {order id: (user, expected status)}."""
    placed: dict[str, tuple[str, str]] = {}
    for user, body in (("u1", None), ("u2", order_body(("p-pen", 7))), ("u2", order_body(("p-mouse", 1)))):
        placed[(await _confirmed(shop, body, user))["id"]] = (user, "CONFIRMED")

    declined = await _reserved(shop, order_body(("p-mouse", 3)), "u1")
    await shop.reply(PaymentDeclined(order_id=declined["id"], reason="card_declined"))
    placed[declined["id"]] = ("u1", "CANCELLED")

    no_stock = await shop.place_ok(order_body(("p-pen", 2), ("p-mouse", 1)), user="u3")
    await shop.reply(
        StockReservationFailed(order_id=no_stock["id"], reason="out_of_stock", product_id="p-mouse")
    )
    placed[no_stock["id"]] = ("u3", "CANCELLED")

    by_user = await shop.place_ok(order_body(("p-pen", 1)), user="u3")
    await _post(shop, by_user["id"], "cancel", "u3")
    placed[by_user["id"]] = ("u3", "CANCELLED")

    refunded = await _confirmed(shop, order_body(("p-mouse", 4)), "u1")
    await _post(shop, refunded["id"], "cancel", "u1")
    placed[refunded["id"]] = ("u1", "CANCELLED")

    for user, body in (("u1", order_body(("p-pen", 3), ("p-mouse", 2))), ("u3", None)):
        shipped = await _confirmed(shop, body, user)
        await _post(shop, shipped["id"], "ship", *ADMIN)
        placed[shipped["id"]] = (user, "SHIPPED")

    pending = await shop.place_ok(order_body(("p-mouse", 1), ("p-pen", 1)), user="u2")
    placed[pending["id"]] = ("u2", "PENDING")
    return placed


# --- reading them ------------------------------------------------------------------------------
async def _reads(shop: Shop, placed: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Every read the API answers about these orders, as its clients see them."""
    reads: dict[str, Any] = {}
    for order_id, (user, _) in placed.items():
        response = await shop.client.get(f"/orders/{order_id}", headers=shop.auth_headers(user))
        reads[f"order {order_id}"] = response.json() if response.status_code == 200 else response.status_code
    for user in USERS:
        for status in (None, *OrderStatus):
            params = {"status": status.value} if status else {}
            response = await shop.client.get("/orders", params=params, headers=shop.auth_headers(user))
            assert response.status_code == 200, response.text
            reads[f"list {user} {status}"] = response.json()
    response = await shop.client.get("/orders/analytics", headers=shop.auth_headers(*ADMIN))
    assert response.status_code == 200, response.text
    reads["analytics"] = response.json()
    return reads


async def _rebuild(shop: Shop) -> dict[str, Any]:
    response = await shop.client.post(REBUILD, headers=shop.auth_headers(*ADMIN))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _execute(shop: Shop, *statements: Any) -> None:
    async with shop.service.unit_of_work() as uow:
        for statement in statements:
            await uow.session.execute(statement)
        await uow.commit()


async def _events(shop: Shop) -> list[Any]:
    async with shop.service.unit_of_work() as uow:
        return await EventStore(uow.session).read_all()


async def _checkpoint(shop: Shop) -> int | None:
    async with shop.service.unit_of_work() as uow:
        found = await uow.session.scalar(
            sa.select(projection_checkpoints.c.position).where(projection_checkpoints.c.name == "orders")
        )
    return None if found is None else int(found)


# --- rebuild -----------------------------------------------------------------------------------
async def test_the_reads_agree_with_the_events_and_each_other(shop: Shop) -> None:
    placed = await _drive(shop)
    reads = await _reads(shop, placed)
    statuses = {oid: reads[f"order {oid}"]["status"] for oid in placed}
    assert statuses == {oid: status for oid, (_, status) in placed.items()}
    assert [reads[f"list {u} None"]["total"] for u in USERS] == [4, 3, 3]

    # Every order's view is the fold of its events ...
    events = await _events(shop)
    for order_id in placed:
        history = [event_from(e.type, e.data) for e in events if e.aggregate_id == order_id]
        folded = Order.from_history(order_id, history)
        view = reads[f"order {order_id}"]
        assert (view["status"], view["status_reason"], view["total"]) == (
            folded.status.value,
            folded.status_reason,
            float(folded.total),
        )
    # ... and the analytics are those of the orders as read one by one.
    by_status = Counter(statuses.values())
    for status in OrderStatus:
        totals = reads["analytics"]["by_status"][status.value]
        revenue = sum(reads[f"order {o}"]["total"] for o, s in statuses.items() if s == status.value)
        assert (totals["count"], round(totals["revenue"], 2)) == (by_status[status], round(revenue, 2))
    [today] = reads["analytics"]["by_day"]
    paid = sum(reads[f"order {o}"]["total"] for o, s in statuses.items() if s in ("CONFIRMED", "SHIPPED"))
    assert (today["count"], round(today["revenue"], 2)) == (10, round(paid, 2))


async def test_a_rebuild_restores_every_read_from_the_events(shop: Shop) -> None:
    placed = await _drive(shop)
    before = await _reads(shop, placed)
    ids = list(placed)
    address = before[f"order {ids[0]}"]["shipping_address"]

    await _execute(
        shop,
        # A row with the wrong status, one with a wrong total, one moved to another user ...
        sa.update(orders).where(orders.c.id == ids[0]).values(status="CANCELLED", status_reason="oops"),
        sa.update(orders).where(orders.c.id == ids[1]).values(total=0, shipping_cost=99, version=1),
        sa.update(orders).where(orders.c.id == ids[2]).values(user_id="u3"),
        # ... lines lost or changed ...
        sa.delete(order_lines).where(order_lines.c.order_id == ids[8], order_lines.c.position == 1),
        sa.update(order_lines).where(order_lines.c.order_id == ids[9]).values(quantity=42),
        # ... the analytics gone or made up ...
        sa.delete(order_stats_by_status),
        sa.delete(order_stats_by_day),
        sa.insert(order_stats_by_day).values(day="1999-01-01", count=3, revenue=10),
        # ... and a view no event explains.
        sa.insert(orders).values(
            id="ghost",
            user_id="u1",
            status="CONFIRMED",
            status_reason=None,
            total=5,
            shipping_cost=0,
            currency="USD",
            shipping_address=address,
            created_at=sa.func.current_timestamp(),
            updated_at=sa.func.current_timestamp(),
            version=1,
        ),
        sa.insert(order_lines).values(
            order_id="ghost", position=0, product_id="p-pen", name="Pen", quantity=50, unit_price=0.1
        ),
        sa.delete(projection_checkpoints),
    )
    corrupted = await _reads(shop, placed)
    differing = sorted(key for key in before if corrupted[key] != before[key])
    assert len(differing) > 10, differing  # the corruption is visible before the rebuild

    events = await _events(shop)
    answer = await _rebuild(shop)
    assert answer == {"events": len(events), "orders": 10, "position": events[-1].position}
    # 3 confirmed (2 events), 4 cancelled (2, 2, 2, 3), 2 shipped (3), 1 pending (1)
    assert len(events) == 3 * 2 + (2 + 2 + 2 + 3) + 2 * 3 + 1
    assert await _reads(shop, placed) == before
    assert (await shop.client.get("/orders/ghost", headers=shop.auth_headers(*ADMIN))).status_code == 404
    assert await _checkpoint(shop) == events[-1].position

    assert await _rebuild(shop) == answer  # a second rebuild changes nothing
    assert await _reads(shop, placed) == before


async def test_rebuilding_an_empty_store_empties_the_views(shop: Shop) -> None:
    assert await _rebuild(shop) == {"events": 0, "orders": 0, "position": 0}
    analytics = (await shop.client.get("/orders/analytics", headers=shop.auth_headers(*ADMIN))).json()
    assert analytics["by_day"] == [] and all(s["count"] == 0 for s in analytics["by_status"].values())


async def test_only_an_admin_rebuilds(shop: Shop) -> None:
    await shop.place_ok()
    await _execute(shop, sa.delete(order_stats_by_status))
    assert (await shop.client.post(REBUILD, headers=shop.auth_headers("u1"))).status_code == 403
    assert (await shop.client.post(REBUILD)).status_code == 401
    async with shop.service.unit_of_work() as uow:
        assert await OrderViews(uow.session).totals_by_status() == {}  # nothing was rebuilt


# --- catch-up ----------------------------------------------------------------------------------
def _unprojected_order(order_id: str, user: str) -> Order:
    """An order placed and confirmed in the domain only: nothing has projected it."""
    now = datetime.now(UTC)
    address = ShippingAddress(**conftest.address())
    order = Order(order_id, user, [OrderLine("p-pen", "Pen", 2, Decimal("0.10"))], "USD", address, now, now)
    order.add_shipping(Decimal("4.50"), "USD")
    order.place()
    order.confirm("pay-lost", now)
    return order


async def _lose_projections(shop: Shop, shipped_id: str, new_id: str) -> None:
    """Events the views never saw, as if their projection and the checkpoint had been lost: the
    shipment of an order whose row stays at its earlier version, and a whole order with no row."""
    async with shop.service.unit_of_work() as uow:
        repo = OrderRepository(uow.session)  # appends only; store.save would also project
        order = await repo.get(shipped_id)
        assert order is not None and order.version == 2
        order.ship(datetime.now(UTC))
        await repo.save(order)
        await repo.save(_unprojected_order(new_id, "u2"))
        await uow.session.execute(sa.delete(projection_checkpoints))
        await uow.commit()


async def _catch_up(shop: Shop) -> int:
    async with shop.service.unit_of_work() as uow:
        applied = await OrdersProjection(uow.session).catch_up()
        await uow.commit()
    return applied


async def test_catch_up_applies_what_the_views_miss_once_and_skips_the_rest(shop: Shop) -> None:
    placed = await _drive(shop)
    confirmed = next(oid for oid, (_, status) in placed.items() if status == "CONFIRMED")
    user = placed[confirmed][0]
    await _lose_projections(shop, confirmed, "o-lost")
    assert (await shop.order(confirmed, user))["status"] == "CONFIRMED"  # the view is behind
    assert (await shop.client.get("/orders/o-lost", headers=shop.auth_headers("u2"))).status_code == 404

    # From the first event (no checkpoint): the 22 events already in the views are skipped.
    assert await _catch_up(shop) == 3
    shipped = await shop.order(confirmed, user)
    assert (shipped["status"], shipped["status_reason"]) == ("SHIPPED", None)
    lost = await shop.order("o-lost", "u2")
    assert (lost["status"], lost["total"], [i["quantity"] for i in lost["items"]]) == ("CONFIRMED", 4.7, [2])
    placed["o-lost"] = ("u2", "CONFIRMED")
    events = await _events(shop)
    assert await _checkpoint(shop) == events[-1].position
    assert await _catch_up(shop) == 0  # nothing twice

    caught_up = await _reads(shop, placed)
    assert caught_up["list u2 None"]["total"] == 4
    await _rebuild(shop)
    assert await _reads(shop, placed) == caught_up  # views and analytics exactly as recomputed
    async with shop.service.unit_of_work() as uow:
        views = await OrderViews(uow.session).all()
        by_status = await OrderViews(uow.session).totals_by_status()
    assert by_status == {k: v for k, v in Analytics.of(views).by_status.items() if v[0]}


async def test_a_restarted_service_catches_up_before_it_answers(
    settings: OrderSettings, products: conftest.FakeProducts
) -> None:
    async with _started(settings, products) as shop:
        order = await _confirmed(shop)
        await _lose_projections(shop, order["id"], "o-lost")
        assert (await shop.order(order["id"]))["status"] == "CONFIRMED"
    async with _started(settings, products) as shop:
        assert (await shop.order(order["id"]))["status"] == "SHIPPED"
        assert (await shop.order("o-lost", "u2"))["status"] == "CONFIRMED"
        assert await _catch_up(shop) == 0


@asynccontextmanager
async def _started(settings: OrderSettings, products: conftest.FakeProducts) -> AsyncIterator[Shop]:
    """The `shop` fixture's service, started (and so caught up) on the same database each time."""
    bus = InMemoryBus()
    shipping = conftest.FakeShipping()
    await bus.respond(ShippingQuoteRequest.subject, shipping.calculate)
    async with running(create_service(settings, bus=bus), harness=Shop) as shop:
        shop.products = products
        shop.shipping = shipping
        yield shop


# --- a cancel that loses a race --------------------------------------------------------------
async def _cancel_from(shop: Shop, order_id: str, loaded: list[Any], attempts: list[int]) -> Order:
    """The API's cancel (orchestrator.cancel in one unit of work), first from `loaded`: the events
    this writer read before another writer appended. Every later attempt loads afresh."""
    orchestrator = shop.service.app.state.orchestrator
    async with shop.service.unit_of_work() as uow:
        order = Order.from_history(order_id, loaded) if not attempts else await store.load(uow, order_id)
        assert order is not None
        attempts.append(order.version)
        saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
        assert saga is not None
        await orchestrator.cancel(uow, order, saga, reason="cancelled_by_user")
        await uow.commit()
    return order


async def _history(shop: Shop, order_id: str) -> list[Any]:
    async with shop.service.unit_of_work() as uow:
        return [event_from(e.type, e.data) for e in await EventStore(uow.session).load(order_id)]


async def test_a_cancel_that_conflicts_is_decided_again_on_the_fresh_order(shop: Shop) -> None:
    order = await _reserved(shop, None, "u1")
    read_by_the_canceller = await _history(shop, order["id"])  # PENDING, version 1
    # Meanwhile the capture confirms the order: version 2 is taken.
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=Decimal("44.48")))

    attempts: list[int] = []
    cancelled = await store.retry_on_conflict(
        lambda: _cancel_from(shop, order["id"], read_by_the_canceller, attempts)
    )
    await shop.settle()
    assert attempts == [1, 2]  # the stale attempt conflicted; the second saw the confirmation
    assert (cancelled.status, cancelled.version) == (OrderStatus.CANCELLED, 3)
    history = await _history(shop, order["id"])
    assert [type(e).__name__ for e in history] == ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]
    assert history[-1].was_confirmed  # decided on the confirmed order: the money goes back
    view = await shop.order(order["id"])
    assert (view["status"], view["status_reason"]) == ("CANCELLED", "cancelled_by_user")
    saga = await shop.saga(order["id"])
    # The losing attempt's saga changes were rolled back with its events: one of each compensation.
    assert [s["name"] for s in saga["steps"]].count(Step.REFUND_PAYMENT.value) == 1
    assert [s["name"] for s in saga["steps"]].count(Step.RELEASE_INVENTORY.value) == 1
    assert len(shop.sent("payment.refund", order["id"])) == 1


async def test_a_cancel_that_keeps_conflicting_gives_up_and_changes_nothing(shop: Shop) -> None:
    order = await _reserved(shop, None, "u1")
    stale = await _history(shop, order["id"])
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=Decimal("44.48")))
    tries = 0

    async def always_stale() -> Order:
        nonlocal tries
        tries += 1
        return await _cancel_from(shop, order["id"], stale, [])  # never reloads

    with pytest.raises(ConcurrencyConflict):
        await store.retry_on_conflict(always_stale)
    assert tries == store.CONFLICT_ATTEMPTS
    assert (await shop.order(order["id"]))["status"] == "CONFIRMED"
    assert len(await _history(shop, order["id"])) == 2
    assert (await shop.saga(order["id"]))["status"] == "RUNNING"
    assert shop.sent("payment.refund", order["id"]) == []
