"""The shipping rule. No I/O here.

cost = zone base rate + zone rate per kg x parcel weight, to the cent (half up); items of
unknown weight count as DEFAULT_ITEM_WEIGHT_KG. Domestic parcels whose items cost at least the
free-shipping threshold ship free. The zone also gives the estimated delivery days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
HOME_COUNTRY = "US"
DEFAULT_ITEM_WEIGHT_KG = Decimal("0.5")
MAX_ITEMS = 50
MAX_QUANTITY = 1000
MAX_ITEM_WEIGHT_KG = Decimal("1000")
SERVICE_LEVEL = "standard"


class InvalidShipment(ValueError):
    pass


class Zone(StrEnum):
    DOMESTIC = "DOMESTIC"
    NORTH_AMERICA = "NORTH_AMERICA"
    EUROPE = "EUROPE"
    WORLD = "WORLD"


@dataclass(frozen=True)
class Rate:
    base: Decimal
    per_kg: Decimal
    estimated_days: int


RATES: dict[Zone, Rate] = {
    Zone.DOMESTIC: Rate(Decimal("4.99"), Decimal("0.50"), 3),
    Zone.NORTH_AMERICA: Rate(Decimal("9.99"), Decimal("1.00"), 5),
    Zone.EUROPE: Rate(Decimal("14.99"), Decimal("2.00"), 7),
    Zone.WORLD: Rate(Decimal("24.99"), Decimal("3.00"), 10),
}

NORTH_AMERICA = frozenset({"CA", "MX"})
# EU, EEA, the UK and Switzerland: one rate for the continent.
EUROPE = frozenset(
    "AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()
)


@dataclass(frozen=True)
class Item:
    product_id: str
    quantity: int
    weight_kg: Decimal | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= MAX_QUANTITY:
            raise InvalidShipment(f"quantity must be 1..{MAX_QUANTITY}")
        if self.weight_kg is not None and not 0 < self.weight_kg <= MAX_ITEM_WEIGHT_KG:
            raise InvalidShipment(f"an item weighs more than 0 and at most {MAX_ITEM_WEIGHT_KG} kg")

    @property
    def weight(self) -> Decimal:
        return (self.weight_kg or DEFAULT_ITEM_WEIGHT_KG) * self.quantity


@dataclass(frozen=True)
class Quote:
    cost: Decimal
    currency: str
    service_level: str
    estimated_days: int
    zone: Zone


def zone_of(country: str) -> Zone:
    code = country.upper()
    if len(code) != 2 or not code.isalpha() or not code.isascii():
        raise InvalidShipment("country must be a two-letter code")
    if code == HOME_COUNTRY:
        return Zone.DOMESTIC
    if code in NORTH_AMERICA:
        return Zone.NORTH_AMERICA
    if code in EUROPE:
        return Zone.EUROPE
    return Zone.WORLD


def quote(
    *, country: str, items: Sequence[Item], subtotal: Decimal, currency: str, free_over: Decimal
) -> Quote:
    """What delivering `items` (costing `subtotal`) to `country` costs, in `currency`."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidShipment(f"a parcel has 1..{MAX_ITEMS} items")
    if subtotal < 0:
        raise InvalidShipment("subtotal must not be negative")
    zone = zone_of(country)
    rate = RATES[zone]
    if zone is Zone.DOMESTIC and subtotal >= free_over:
        cost = Decimal("0")
    else:
        cost = rate.base + rate.per_kg * sum((item.weight for item in items), Decimal("0"))
    return Quote(cost.quantize(CENT, ROUND_HALF_UP), currency, SERVICE_LEVEL, rate.estimated_days, zone)
