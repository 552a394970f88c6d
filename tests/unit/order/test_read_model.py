"""The read side's rules against the aggregate's: for any valid histories of several orders,
interleaved as the store would hold them, `project` builds the view the aggregate folds to, and
the analytics deltas add up to the analytics of the final views."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msashop.services.order.domain import (
    Order,
    OrderConfirmed,
    OrderEvent,
    OrderLine,
    ShippingAddress,
    event_from,
)
from msashop.services.order.read_model import (
    Analytics,
    LineView,
    OrderView,
    ProjectionError,
    analytics_delta,
    project,
)

PATHS = ("pending", "confirmed", "shipped", "cancelled_pending", "cancelled_confirmed")
REASONS = ("cancelled_by_user", "payment_declined", "out_of_stock", "timeout")

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)
costs = st.decimals(min_value=Decimal("0"), max_value=Decimal("99.99"), places=2)
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))
gaps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))


@dataclass
class History:
    order_id: str
    events: list[OrderEvent]


@st.composite
def histories(draw: st.DrawFn, order_id: str) -> History:
    """One order priced at random, placed, then taken down a random valid path."""
    product_ids = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=5, unique=True))
    lines = [
        OrderLine(f"p-{pid}", f"Product {pid}", draw(st.integers(1, 100)), draw(prices))
        for pid in product_ids
    ]
    currency = draw(st.sampled_from(["USD", "EUR"]))
    address = ShippingAddress(
        name="Ada",
        line1="1 Loop St",
        line2=draw(st.none() | st.just("Flat 2")),
        city="Leeds",
        postal_code="LS1",
        country=draw(st.sampled_from(["GB", "FR", "US"])),
    )
    created = draw(moments)
    order = Order(order_id, f"u{draw(st.integers(1, 3))}", lines, currency, address, created, created)
    order.add_shipping(draw(costs), currency)
    order.place()
    at = created
    path = draw(st.sampled_from(PATHS))
    if path != "pending" and path != "cancelled_pending":
        at += draw(gaps)
        order.confirm(f"pay-{order_id}", at)
    if path == "shipped":
        at += draw(gaps)
        order.ship(at)
    if path.startswith("cancelled"):
        at += draw(gaps)
        order.cancel(draw(st.sampled_from(REASONS)), at)
    return History(order_id, list(order.pending_events))


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[list[History], list[tuple[str, int, str, dict[str, Any]]]]:
    """Several histories and the store's order of their events: each order's own in sequence."""
    count = draw(st.integers(1, 6))
    orders = [draw(histories(f"o{n}")) for n in range(count)]
    taken = {h.order_id: 0 for h in orders}
    stream: list[tuple[str, int, str, dict[str, Any]]] = []
    while left := [h for h in orders if taken[h.order_id] < len(h.events)]:
        history = draw(st.sampled_from(left))
        event = history.events[taken[history.order_id]]
        taken[history.order_id] += 1
        data = json.loads(json.dumps(event.to_data()))  # as the store's JSON column returns it
        stream.append((history.order_id, taken[history.order_id], event.type, data))
    return orders, stream


def _nonzero(totals: dict[str, tuple[int, Decimal]]) -> dict[str, tuple[int, Decimal]]:
    return {key: value for key, value in totals.items() if value[0]}


@settings(max_examples=200, deadline=None)
@given(interleaved())
def test_projected_views_are_the_aggregate_fold_and_deltas_add_up(
    case: tuple[list[History], list[tuple[str, int, str, dict[str, Any]]]],
) -> None:
    orders, stream = case
    views: dict[str, OrderView] = {}
    analytics = Analytics()
    for order_id, version, type_, data in stream:
        before = views.get(order_id)
        views[order_id] = project(before, order_id, version, type_, data)
        analytics.add(analytics_delta(before, views[order_id]))

    assert set(views) == {h.order_id for h in orders}
    for history in orders:
        view = views[history.order_id]
        # The fold of the same stored data, as the write side loads it.
        stored = [(t, d) for oid, _, t, d in stream if oid == history.order_id]
        order = Order.from_history(history.order_id, [event_from(t, d) for t, d in stored])
        assert order == Order.from_history(history.order_id, history.events)
        assert view.id == order.id and view.user_id == order.user_id
        assert (view.status, view.status_reason) == (order.status.value, order.status_reason)
        assert view.lines == tuple(
            LineView(line.product_id, line.name, line.quantity, line.unit_price) for line in order.lines
        )
        assert (view.shipping_cost, view.total, view.currency) == (
            order.shipping_cost,
            order.total,
            order.currency,
        )
        assert view.shipping_address == order.shipping_address.to_data()
        assert (view.created_at, view.updated_at, view.version) == (
            order.created_at,
            order.updated_at,
            order.version,
        )

    expected = Analytics.of(views.values())
    assert _nonzero(analytics.by_status) == _nonzero(expected.by_status)
    assert _nonzero(analytics.by_day) == _nonzero(expected.by_day)
    # A status every order left counts nothing and weighs nothing.
    assert all(revenue == 0 for count, revenue in analytics.by_status.values() if count == 0)


# --- examples -----------------------------------------------------------------------------------
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PLACED = {
    "user_id": "u1",
    "lines": [{"product_id": "p1", "name": "Mouse", "quantity": 2, "unit_price": "19.99"}],
    "currency": "USD",
    "shipping_address": {
        "name": "Ada",
        "line1": "1 Loop St",
        "line2": None,
        "city": "Leeds",
        "postal_code": "LS1",
        "country": "GB",
    },
    "shipping_cost": "4.50",
    "at": NOW.isoformat(),
}
CONFIRMED = OrderConfirmed("pay-1", NOW + timedelta(minutes=1)).to_data()


def _placed() -> OrderView:
    return project(None, "o1", 1, "OrderPlaced", PLACED)


def test_a_placed_order_view() -> None:
    view = _placed()
    assert (view.status, view.version, view.total, view.day) == ("PENDING", 1, Decimal("44.48"), "2026-01-02")


@pytest.mark.parametrize("version", [1, 3])
def test_an_event_that_does_not_follow_the_view_is_refused(version: int) -> None:
    with pytest.raises(ProjectionError, match="the view expects 2"):
        project(_placed(), "o1", version, "OrderConfirmed", CONFIRMED)


def test_a_first_event_that_is_not_order_placed_is_refused() -> None:
    with pytest.raises(ProjectionError, match="not OrderPlaced"):
        project(None, "o1", 1, "OrderConfirmed", CONFIRMED)


def test_a_first_event_must_be_version_1() -> None:
    with pytest.raises(ProjectionError, match="expects 1"):
        project(None, "o1", 2, "OrderPlaced", PLACED)


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ProjectionError, match="unknown event type"):
        project(_placed(), "o1", 2, "OrderLost", {"at": NOW.isoformat()})


def test_a_paid_order_adds_revenue_and_a_cancellation_takes_it_back() -> None:
    placed = _placed()
    confirmed = project(placed, "o1", 2, "OrderConfirmed", CONFIRMED)
    delta = analytics_delta(placed, confirmed)
    assert delta.by_status == (("PENDING", -1, Decimal("-44.48")), ("CONFIRMED", 1, Decimal("44.48")))
    assert (delta.day_count, delta.day_revenue) == (0, Decimal("44.48"))
    cancelled = project(confirmed, "o1", 3, "OrderCancelled", {"reason": "x", "at": NOW.isoformat()})
    assert analytics_delta(confirmed, cancelled).day_revenue == Decimal("-44.48")
