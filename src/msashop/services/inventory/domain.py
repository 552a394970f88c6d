"""Stock and reservations: the rules, no I/O.

A reservation moves quantity from `available` to `reserved` for one order, all lines or none.
Committing it (order confirmed) drops the quantity from `reserved`: it has left the shop.
Releasing it gives the quantity back to `available`, also after a commit (a confirmed order
was cancelled).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class InvalidStock(ValueError):
    """A change would make a counter negative, or a quantity is not positive."""


class OutOfStock(Exception):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"not enough stock of {product_id}")
        self.product_id = product_id


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"


@dataclass
class Stock:
    product_id: str
    available: int
    reserved: int = 0

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        if self.available < 0 or self.reserved < 0:
            raise InvalidStock(f"stock of {self.product_id} cannot be negative")

    def _apply(self, available: int, reserved: int) -> None:
        # Check before assigning, so a refused change leaves the counters as they were.
        Stock(self.product_id, self.available + available, self.reserved + reserved)
        self.available += available
        self.reserved += reserved

    def hold(self, quantity: int) -> None:
        if quantity > self.available:
            raise OutOfStock(self.product_id)
        self._apply(-quantity, +quantity)

    def settle(self, quantity: int) -> None:
        """The held quantity is sold: it leaves `reserved`, and `available` stays reduced."""
        self._apply(0, -quantity)

    def give_back(self, quantity: int) -> None:
        """A held quantity is no longer wanted."""
        self._apply(+quantity, -quantity)

    def restore(self, quantity: int) -> None:
        """A sold quantity comes back (its order was cancelled after confirmation)."""
        self._apply(+quantity, 0)

    def restock(self, available: int) -> None:
        if available < 0:
            raise InvalidStock("available cannot be negative")
        self.available = available


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


def merge_lines(lines: Iterable[Line]) -> list[Line]:
    """One line per product (quantities added), in first-seen order; every quantity positive."""
    totals: dict[str, int] = {}
    for line in lines:
        if line.quantity <= 0:
            raise InvalidStock(f"quantity of {line.product_id} must be positive")
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return [Line(pid, q) for pid, q in totals.items()]


def first_shortage(stock: Mapping[str, Stock], lines: Iterable[Line]) -> str | None:
    """The first product there is not enough of (unknown products count as none in stock)."""
    for line in lines:
        item = stock.get(line.product_id)
        if item is None or item.available < line.quantity:
            return line.product_id
    return None


@dataclass
class Reservation:
    order_id: str
    status: ReservationStatus
    lines: list[Line] = field(default_factory=list)

    @classmethod
    def place(cls, order_id: str, lines: Iterable[Line], stock: Mapping[str, Stock]) -> Reservation:
        """Hold every line or nothing: raises OutOfStock before touching any counter."""
        merged = merge_lines(lines)
        short = first_shortage(stock, merged)
        if short is not None:
            raise OutOfStock(short)
        for line in merged:
            stock[line.product_id].hold(line.quantity)
        return cls(order_id, ReservationStatus.RESERVED, merged)

    @classmethod
    def released_before_reserved(cls, order_id: str) -> Reservation:
        """A release that came first: a late reserve for this order must then be refused."""
        return cls(order_id, ReservationStatus.RELEASED, [])

    def commit(self, stock: Mapping[str, Stock]) -> bool:
        """RESERVED -> COMMITTED. False (nothing changed) in any other state."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        for line in self.lines:
            stock[line.product_id].settle(line.quantity)
        self.status = ReservationStatus.COMMITTED
        return True

    def release(self, stock: Mapping[str, Stock]) -> bool:
        """RESERVED or COMMITTED -> RELEASED, the quantity back to available. False if released."""
        if self.status is ReservationStatus.RELEASED:
            return False
        for line in self.lines:
            if self.status is ReservationStatus.RESERVED:
                stock[line.product_id].give_back(line.quantity)
            else:
                stock[line.product_id].restore(line.quantity)
        self.status = ReservationStatus.RELEASED
        return True

    @property
    def product_ids(self) -> list[str]:
        return [line.product_id for line in self.lines]
