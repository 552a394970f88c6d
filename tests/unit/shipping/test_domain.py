"""The shipping rule: zones, weight, free shipping, rounding and what is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from msashop.services.shipping.domain import InvalidShipment, Item, Zone, quote, zone_of

FREE_OVER = Decimal("50.00")


def _quote(country: str = "US", *items: Item, subtotal: str = "10.00") -> tuple[Decimal, int, Zone]:
    found = quote(
        country=country,
        items=items or (Item("p1", 1),),
        subtotal=Decimal(subtotal),
        currency="USD",
        free_over=FREE_OVER,
    )
    assert (found.currency, found.service_level) == ("USD", "standard")
    return found.cost, found.estimated_days, found.zone


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("US", Zone.DOMESTIC),
        ("us", Zone.DOMESTIC),
        ("CA", Zone.NORTH_AMERICA),
        ("MX", Zone.NORTH_AMERICA),
        ("GB", Zone.EUROPE),
        ("DE", Zone.EUROPE),
        ("KR", Zone.WORLD),
        ("BR", Zone.WORLD),
    ],
)
def test_the_country_picks_the_zone(country: str, zone: Zone) -> None:
    assert zone_of(country) is zone


def test_cost_is_the_zone_base_plus_the_rate_per_kg() -> None:
    assert _quote("US", Item("p1", 2, Decimal("1.5"))) == (Decimal("6.49"), 3, Zone.DOMESTIC)  # 4.99 + 0.5*3
    assert _quote("CA", Item("p1", 1, Decimal("2"))) == (Decimal("11.99"), 5, Zone.NORTH_AMERICA)
    assert _quote("GB", Item("p1", 1, Decimal("2")), Item("p2", 2, Decimal("1"))) == (
        Decimal("22.99"),
        7,
        Zone.EUROPE,
    )
    assert _quote("KR", Item("p1", 1, Decimal("1"))) == (Decimal("27.99"), 10, Zone.WORLD)


def test_an_item_of_unknown_weight_counts_half_a_kilo() -> None:
    assert _quote("KR", Item("p1", 4))[0] == Decimal("30.99")  # 24.99 + 3 * (4 * 0.5)


def test_cost_is_rounded_half_up_to_the_cent() -> None:
    assert _quote("US", Item("p1", 1, Decimal("0.01")))[0] == Decimal("5.00")  # 4.99 + 0.005
    assert _quote("US", Item("p1", 1, Decimal("0.009")))[0] == Decimal("4.99")  # 4.99 + 0.0045


def test_domestic_orders_from_the_threshold_ship_free() -> None:
    assert _quote("US", subtotal="49.99")[0] == Decimal("5.24")
    assert _quote("US", subtotal="50.00")[0] == Decimal("0.00")
    assert _quote("GB", subtotal="500.00")[0] == Decimal("15.99")  # abroad it is never free


@pytest.mark.parametrize(
    ("country", "items", "subtotal"),
    [
        ("USA", [Item("p1", 1)], "1"),
        ("1A", [Item("p1", 1)], "1"),
        ("US", [], "1"),
        ("US", [Item(f"p{i}", 1) for i in range(51)], "1"),
        ("US", [Item("p1", 1)], "-0.01"),
    ],
)
def test_impossible_shipments_are_refused(country: str, items: list[Item], subtotal: str) -> None:
    with pytest.raises(InvalidShipment):
        quote(country=country, items=items, subtotal=Decimal(subtotal), currency="USD", free_over=FREE_OVER)


@pytest.mark.parametrize(
    ("quantity", "weight"), [(0, None), (1001, None), (1, Decimal("0")), (1, Decimal("1001"))]
)
def test_impossible_items_are_refused(quantity: int, weight: Decimal | None) -> None:
    with pytest.raises(InvalidShipment):
        Item("p1", quantity, weight)
