"""The catalog's rules. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

CURRENCY = "USD"


class InvalidProduct(ValueError):
    pass


@dataclass
class Product:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise InvalidProduct("price must be positive")
        if self.price != self.price.quantize(Decimal("0.01")):
            raise InvalidProduct("price has more than two decimals")
