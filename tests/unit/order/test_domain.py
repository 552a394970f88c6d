"""The order's values and pricing, without I/O: money, lines, addresses, the catalog's prices.

The aggregate's events and rules: test_order_aggregate.py; the saga's state: test_saga_state.py.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from msashop.services.order.domain import (
    CatalogEntry,
    InvalidOrder,
    InvalidTransition,
    Order,
    OrderLine,
    OrderStatus,
    ShippingAddress,
    UnknownProducts,
    merge_items,
    money,
    place_order,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ADDRESS = ShippingAddress(name="Ada", line1="1 Loop St", city="Leeds", postal_code="LS1", country="GB")
CATALOG = {
    "p1": CatalogEntry("p1", "Mouse", Decimal("19.99"), "USD"),
    "p2": CatalogEntry("p2", "Pen", Decimal("0.10"), "USD"),
}


def _order(**quantities: int) -> Order:
    return place_order(
        order_id="o1",
        user_id="u1",
        quantities=quantities or {"p1": 1},
        catalog=CATALOG,
        shipping_address=ADDRESS,
        now=NOW,
    )


def test_total_is_the_sum_of_line_totals_to_the_cent() -> None:
    order = _order(p1=3, p2=7)
    assert [line.line_total for line in order.lines] == [Decimal("59.97"), Decimal("0.70")]
    assert order.total == Decimal("60.67")
    assert order.currency == "USD" and order.status is OrderStatus.PENDING


def test_a_priced_order_is_not_placed_yet() -> None:
    order = _order()
    assert (order.version, order.pending_events) == (0, [])


def test_total_adds_the_shipping_cost_to_the_items_subtotal() -> None:
    order = _order(p1=3, p2=7)
    assert order.shipping_cost == Decimal("0.00")  # nothing added yet
    order.add_shipping(Decimal("4.995"), "USD")
    assert (order.subtotal, order.shipping_cost, order.total) == (
        Decimal("60.67"),
        Decimal("5.00"),  # to the cent, half up
        Decimal("65.67"),
    )


@pytest.mark.parametrize(("cost", "currency"), [(Decimal("-0.01"), "USD"), (Decimal("5"), "EUR")])
def test_a_negative_shipping_cost_or_another_currency_is_refused(cost: Decimal, currency: str) -> None:
    order = _order()
    with pytest.raises(InvalidOrder):
        order.add_shipping(cost, currency)
    assert order.total == Decimal("19.99")


def test_shipping_is_priced_before_the_order_is_placed() -> None:
    order = _order()
    order.place()
    with pytest.raises(InvalidTransition):
        order.add_shipping(Decimal("1"), "USD")
    assert order.shipping_cost == Decimal("0.00")


def test_money_rounds_half_up_from_floats_without_binary_noise() -> None:
    assert money(19.99) == Decimal("19.99")
    assert money("0.005") == Decimal("0.01")


def test_duplicate_products_merge_into_one_line_in_first_seen_order() -> None:
    assert merge_items([("p2", 1), ("p1", 2), ("p2", 3)]) == {"p2": 4, "p1": 2}


def test_merged_quantity_above_the_limit_is_refused() -> None:
    with pytest.raises(InvalidOrder):
        merge_items([("p1", 60), ("p1", 41)])


@pytest.mark.parametrize("items", [[], [(f"p{i}", 1) for i in range(51)], [("p1", 0)]])
def test_line_count_and_quantity_bounds(items: list[tuple[str, int]]) -> None:
    with pytest.raises(InvalidOrder):
        merge_items(items)


def test_unknown_products_are_named() -> None:
    with pytest.raises(UnknownProducts) as caught:
        _order(p1=1, nope=2, gone=1)
    assert caught.value.product_ids == ["nope", "gone"]


def test_products_in_two_currencies_cannot_share_an_order() -> None:
    catalog = {**CATALOG, "p3": CatalogEntry("p3", "Euro thing", Decimal("5"), "EUR")}
    with pytest.raises(InvalidOrder):
        place_order(
            order_id="o1",
            user_id="u1",
            quantities={"p1": 1, "p3": 1},
            catalog=catalog,
            shipping_address=ADDRESS,
            now=NOW,
        )


def test_a_line_needs_a_positive_price() -> None:
    with pytest.raises(InvalidOrder):
        OrderLine("p1", "Free", 1, Decimal("0"))


def test_an_order_has_no_product_twice() -> None:
    line = OrderLine("p1", "Mouse", 1, Decimal("1"))
    with pytest.raises(InvalidOrder):
        Order("o1", "u1", [line, line], "USD", ADDRESS, NOW, NOW)


def test_country_must_be_two_letters() -> None:
    with pytest.raises(InvalidOrder):
        ShippingAddress(name="A", line1="B", city="C", postal_code="D", country="GBR")
