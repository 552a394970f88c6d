"""The event-sourced order: each command checks its rule and records one event; the order
folded from those events (`Order.from_history`) is the order that recorded them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from msashop.services.order.domain import (
    InvalidTransition,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    ShippingAddress,
    event_from,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1, T2, T3 = (NOW + timedelta(minutes=n) for n in (1, 2, 3))
ADDRESS = ShippingAddress(name="Ada", line1="1 Loop St", city="Leeds", postal_code="LS1", country="GB")
LINES = [
    OrderLine("p1", "Mouse", 2, Decimal("19.99")),
    OrderLine("p2", "Pen", 3, Decimal("0.10")),
]


def _placed() -> Order:
    order = Order("o1", "u1", list(LINES), "USD", ADDRESS, NOW, NOW)
    order.add_shipping(Decimal("4.50"), "USD")
    order.place()
    return order


def _pending() -> Order:
    return _placed()


def _confirmed() -> Order:
    order = _placed()
    order.confirm("pay-1", T1)
    return order


def _shipped() -> Order:
    order = _confirmed()
    order.ship(T2)
    return order


def _cancelled() -> Order:
    order = _placed()
    order.cancel("cancelled_by_user", T1)
    return order


def _refunded() -> Order:
    order = _confirmed()
    order.cancel("cancelled_by_user", T2)
    return order


# Every status an order can reach, and the path that reaches it.
PATHS: dict[str, Callable[[], Order]] = {
    "pending": _pending,
    "confirmed": _confirmed,
    "shipped": _shipped,
    "cancelled while pending": _cancelled,
    "cancelled once confirmed": _refunded,
}


# --- what each command records ------------------------------------------------------------------
def test_placing_records_the_priced_order_as_its_first_event() -> None:
    order = _placed()
    assert order.pending_events == [
        OrderPlaced(
            user_id="u1",
            lines=tuple(LINES),
            currency="USD",
            shipping_address=ADDRESS,
            shipping_cost=Decimal("4.50"),
            at=NOW,
        )
    ]
    assert (order.status, order.version, order.total) == (OrderStatus.PENDING, 1, Decimal("44.78"))


def test_an_order_is_placed_once() -> None:
    order = _placed()
    with pytest.raises(InvalidTransition):
        order.place()
    assert len(order.pending_events) == 1 and order.version == 1


def test_confirming_records_the_payment() -> None:
    order = _confirmed()
    assert order.pending_events[1:] == [OrderConfirmed(payment_id="pay-1", at=T1)]
    assert (order.status, order.payment_id, order.updated_at, order.version) == (
        OrderStatus.CONFIRMED,
        "pay-1",
        T1,
        2,
    )
    assert order.can_cancel


def test_cancelling_a_pending_order_records_that_nothing_was_paid() -> None:
    order = _cancelled()
    assert order.pending_events[1:] == [
        OrderCancelled(reason="cancelled_by_user", at=T1, was_confirmed=False)
    ]
    assert (order.status, order.status_reason, order.updated_at) == (
        OrderStatus.CANCELLED,
        "cancelled_by_user",
        T1,
    )
    assert not order.can_cancel


def test_cancelling_a_confirmed_order_records_that_the_money_was_taken() -> None:
    order = _refunded()
    assert order.pending_events[2:] == [OrderCancelled(reason="cancelled_by_user", at=T2, was_confirmed=True)]
    assert (order.status, order.version) == (OrderStatus.CANCELLED, 3)


def test_shipping_records_the_shipment() -> None:
    order = _shipped()
    assert order.pending_events[2:] == [OrderShipped(at=T2)]
    assert (order.status, order.updated_at, order.version) == (OrderStatus.SHIPPED, T2, 3)
    assert not order.can_cancel


def test_a_loaded_order_records_only_what_happens_after_it_was_loaded() -> None:
    loaded = Order.from_history("o1", _placed().pending_events)
    assert (loaded.version, loaded.pending_events) == (1, [])
    loaded.confirm("pay-1", T1)
    # The repository appends after version - len(pending) = 1: what it loaded.
    assert (loaded.version, loaded.pending_events) == (2, [OrderConfirmed("pay-1", T1)])


# --- the rules ----------------------------------------------------------------------------------
ALLOWED = {
    # path: (confirm, cancel, ship)
    "pending": (True, True, False),
    "confirmed": (False, True, True),
    "shipped": (False, False, False),
    "cancelled while pending": (False, False, False),
    "cancelled once confirmed": (False, False, False),
}
COMMANDS: dict[str, Callable[[Order], None]] = {
    "confirm": lambda order: order.confirm("pay-2", T3),
    "cancel": lambda order: order.cancel("too_late", T3),
    "ship": lambda order: order.ship(T3),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_is_allowed_only_from_its_statuses(path: str, command: str) -> None:
    order = PATHS[path]()
    before = (order.status, order.status_reason, order.version, order.updated_at, list(order.pending_events))
    allowed = ALLOWED[path][list(COMMANDS).index(command)]
    if allowed:
        COMMANDS[command](order)
        assert order.version == before[2] + 1 and len(order.pending_events) == len(before[4]) + 1
        return
    with pytest.raises(InvalidTransition):
        COMMANDS[command](order)
    # A refused command records nothing and changes nothing.
    after = (order.status, order.status_reason, order.version, order.updated_at, list(order.pending_events))
    assert after == before


def test_a_shipped_order_cannot_be_cancelled() -> None:
    order = _shipped()
    assert not order.can_cancel
    with pytest.raises(InvalidTransition):
        order.cancel("cancelled_by_user", T3)
    assert order.status is OrderStatus.SHIPPED


# --- the fold -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_the_order_folded_from_its_events_is_the_live_order(path: str) -> None:
    live = PATHS[path]()
    folded = Order.from_history(live.id, live.pending_events)
    assert folded == live  # every field but the pending events
    assert (folded.status, folded.status_reason, folded.version, folded.total, folded.payment_id) == (
        live.status,
        live.status_reason,
        live.version,
        live.total,
        live.payment_id,
    )
    assert (folded.created_at, folded.updated_at, folded.shipping_cost) == (
        live.created_at,
        live.updated_at,
        live.shipping_cost,
    )
    assert folded.pending_events == []


@pytest.mark.parametrize("path", PATHS)
def test_the_fold_of_the_stored_json_is_the_live_order(path: str) -> None:
    live = PATHS[path]()
    stored = [(e.type, json.loads(json.dumps(e.to_data()))) for e in live.pending_events]
    assert Order.from_history(live.id, [event_from(t, data) for t, data in stored]) == live


@pytest.mark.parametrize(
    "history",
    [[], [OrderConfirmed("pay-1", T1)], [OrderShipped(T1), *_placed().pending_events]],
    ids=["empty", "confirmed first", "shipped first"],
)
def test_a_history_must_start_with_order_placed(history: list[OrderEvent]) -> None:
    with pytest.raises(ValueError, match="OrderPlaced"):
        Order.from_history("o1", history)


# --- stored form --------------------------------------------------------------------------------
EVENTS: list[OrderEvent] = [
    OrderPlaced(
        user_id="u1",
        lines=(OrderLine("p1", "Mouse", 2, Decimal("19.99")), OrderLine("p2", "Pen", 100, Decimal("0.10"))),
        currency="USD",
        shipping_address=ShippingAddress(
            name="Ada", line1="1 Loop St", line2="Flat 2", city="Leeds", postal_code="LS1", country="GB"
        ),
        shipping_cost=Decimal("0.00"),
        at=NOW,
    ),
    OrderPlaced(
        user_id="u2",
        lines=(OrderLine("p3", "Lamp", 1, Decimal("1234.50")),),
        currency="EUR",
        shipping_address=ADDRESS,  # no line2
        shipping_cost=Decimal("7.25"),
        at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
    ),
    OrderConfirmed(payment_id="pay-1", at=T1),
    OrderCancelled(reason="payment_declined", at=T2),
    OrderCancelled(reason="cancelled_by_user", at=T2, was_confirmed=True),
    OrderShipped(at=T3),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_its_stored_json(event: OrderEvent) -> None:
    data = json.loads(json.dumps(event.to_data()))  # what the JSON column gives back
    assert type(event).from_data(data) == event
    assert event_from(event.type, data) == event
    assert event.type == type(event).__name__


def test_every_event_type_is_covered() -> None:
    assert {type(e) for e in EVENTS} == {OrderPlaced, OrderConfirmed, OrderCancelled, OrderShipped}


def test_prices_are_stored_as_exact_decimal_strings() -> None:
    data = EVENTS[1].to_data()
    assert (data["lines"][0]["unit_price"], data["shipping_cost"]) == ("1234.50", "7.25")


def test_a_cancellation_stored_before_was_confirmed_existed_reads_as_unpaid() -> None:
    assert OrderCancelled.from_data({"reason": "out_of_stock", "at": NOW.isoformat()}) == OrderCancelled(
        "out_of_stock", NOW, was_confirmed=False
    )


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="OrderLost"):
        event_from("OrderLost", {"at": NOW.isoformat()})
