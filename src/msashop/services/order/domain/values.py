"""The order's value objects and limits: money, lines, addresses, what the catalog said."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
MAX_LINES = 50
MAX_QUANTITY = 100


class InvalidOrder(ValueError):
    pass


class UnknownProducts(InvalidOrder):
    def __init__(self, product_ids: list[str]) -> None:
        super().__init__(f"unknown product ids: {', '.join(product_ids)}")
        self.product_ids = product_ids


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


def money(value: Decimal | float | str) -> Decimal:
    """Two decimals, half up; floats go through str so 19.99 stays 19.99."""
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None

    def to_data(self) -> dict[str, str | None]:
        return asdict(self)

    def __post_init__(self) -> None:
        if len(self.country) != 2 or not self.country.isalpha():
            raise InvalidOrder("country must be a two-letter code")


@dataclass(frozen=True)
class CatalogEntry:
    """What the product service told us about a product when the order was placed."""

    product_id: str
    name: str
    price: Decimal
    currency: str


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"quantity must be 1..{MAX_QUANTITY}")
        if self.unit_price <= 0:
            raise InvalidOrder("unit price must be positive")

    @property
    def line_total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT, ROUND_HALF_UP)


def merge_items(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """One quantity per product, in first-seen order; the merged quantity obeys the same limit."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not 1 <= len(merged) <= MAX_LINES:
        raise InvalidOrder(f"an order has 1..{MAX_LINES} distinct products")
    for product_id, quantity in merged.items():
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"quantity of {product_id} must be 1..{MAX_QUANTITY}")
    return merged
