"""The order aggregate, event sourced: its state is the fold of its events. No I/O here.

An order is priced once, when it is placed, from the catalog's prices at that moment and the
shipping service's quote; after that only its status changes. Every command method checks the
rule, then records an event; `apply` is the only code that changes state, so an order rebuilt
from its stored events (`Order.from_history`) is exactly the order that recorded them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from msashop.services.order.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderPlaced,
    OrderShipped,
)
from msashop.services.order.domain.values import (
    CENT,
    MAX_LINES,
    CatalogEntry,
    InvalidOrder,
    OrderLine,
    OrderStatus,
    ShippingAddress,
    UnknownProducts,
    money,
)


class InvalidTransition(ValueError):
    """A command the order's status does not allow (confirm twice, cancel a shipped order...)."""


@dataclass
class Order:
    id: str
    user_id: str
    lines: list[OrderLine]
    currency: str
    shipping_address: ShippingAddress
    created_at: datetime
    updated_at: datetime
    status: OrderStatus = OrderStatus.PENDING
    status_reason: str | None = None
    shipping_cost: Decimal = Decimal("0.00")
    payment_id: str | None = None
    # How many events the store holds for this order; appends expect exactly this many.
    version: int = 0
    # Recorded by commands, not yet stored. The repository appends them and clears the list.
    pending_events: list[OrderEvent] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise InvalidOrder(f"an order has 1..{MAX_LINES} lines")
        if len({line.product_id for line in self.lines}) != len(self.lines):
            raise InvalidOrder("a product appears on two lines")

    # --- reading ------------------------------------------------------------------------------
    @property
    def subtotal(self) -> Decimal:
        """What the items cost, before shipping."""
        return sum((line.line_total for line in self.lines), Decimal("0")).quantize(CENT, ROUND_HALF_UP)

    @property
    def total(self) -> Decimal:
        return (self.subtotal + self.shipping_cost).quantize(CENT, ROUND_HALF_UP)

    @property
    def can_cancel(self) -> bool:
        """Until it ships: a confirmed order can still be cancelled (refunded, stock released)."""
        return self.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED)

    # --- commands -----------------------------------------------------------------------------
    def add_shipping(self, cost: Decimal, currency: str) -> None:
        """Price delivery with the shipping service's quote (before the order is placed)."""
        if self.version or self.pending_events:
            raise InvalidTransition("shipping is priced before the order is placed")
        if currency != self.currency:
            raise InvalidOrder(f"shipping is quoted in {currency}, the order is in {self.currency}")
        if cost < 0:
            raise InvalidOrder("shipping cost must not be negative")
        self.shipping_cost = money(cost)

    def place(self) -> None:
        """Record the priced order as placed: its first event."""
        if self.version or self.pending_events:
            raise InvalidTransition("the order is already placed")
        self._record(
            OrderPlaced(
                user_id=self.user_id,
                lines=tuple(self.lines),
                currency=self.currency,
                shipping_address=self.shipping_address,
                shipping_cost=self.shipping_cost,
                at=self.created_at,
            )
        )

    def confirm(self, payment_id: str, now: datetime) -> None:
        if self.status is not OrderStatus.PENDING:
            raise InvalidTransition(f"only a PENDING order can be confirmed, this one is {self.status}")
        self._record(OrderConfirmed(payment_id=payment_id, at=now))

    def cancel(self, reason: str, now: datetime) -> None:
        if not self.can_cancel:
            raise InvalidTransition(f"the order is already {self.status}")
        self._record(
            OrderCancelled(reason=reason, at=now, was_confirmed=self.status is OrderStatus.CONFIRMED)
        )

    def ship(self, now: datetime) -> None:
        if self.status is not OrderStatus.CONFIRMED:
            raise InvalidTransition(f"only a CONFIRMED order can be shipped, this one is {self.status}")
        self._record(OrderShipped(at=now))

    # --- events -------------------------------------------------------------------------------
    def _record(self, event: OrderEvent) -> None:
        self.apply(event)
        self.pending_events.append(event)

    def apply(self, event: OrderEvent) -> None:
        """The one place state changes. Also used to replay stored events, so it never checks rules."""
        match event:
            case OrderPlaced():
                self.status = OrderStatus.PENDING
                self.updated_at = event.at
            case OrderConfirmed():
                self.status = OrderStatus.CONFIRMED
                self.payment_id = event.payment_id
                self.updated_at = event.at
            case OrderCancelled():
                self.status = OrderStatus.CANCELLED
                self.status_reason = event.reason
                self.updated_at = event.at
            case OrderShipped():
                self.status = OrderStatus.SHIPPED
                self.updated_at = event.at
        self.version += 1

    @classmethod
    def from_history(cls, order_id: str, events: Iterable[OrderEvent]) -> Order:
        """Fold the stored events, oldest first. The first one must be OrderPlaced."""
        history = iter(events)
        placed = next(history, None)
        if not isinstance(placed, OrderPlaced):
            raise ValueError(f"order {order_id}: history does not start with OrderPlaced")
        order = cls(
            id=order_id,
            user_id=placed.user_id,
            lines=list(placed.lines),
            currency=placed.currency,
            shipping_address=placed.shipping_address,
            created_at=placed.at,
            updated_at=placed.at,
            shipping_cost=placed.shipping_cost,
        )
        order.apply(placed)
        for event in history:
            order.apply(event)
        return order


def place_order(
    *,
    order_id: str,
    user_id: str,
    quantities: Mapping[str, int],
    catalog: Mapping[str, CatalogEntry],
    shipping_address: ShippingAddress,
    now: datetime,
) -> Order:
    """Price the requested quantities with the catalog. Every product must be known.

    The order is not placed yet (no event): shipping is priced first, then `place()` records it.
    """
    missing = [pid for pid in quantities if pid not in catalog]
    if missing:
        raise UnknownProducts(missing)
    currencies = {catalog[pid].currency for pid in quantities}
    if len(currencies) != 1:
        raise InvalidOrder("the products are priced in different currencies")
    lines = [
        OrderLine(pid, catalog[pid].name, quantity, money(catalog[pid].price))
        for pid, quantity in quantities.items()
    ]
    return Order(
        id=order_id,
        user_id=user_id,
        lines=lines,
        currency=currencies.pop(),
        shipping_address=shipping_address,
        created_at=now,
        updated_at=now,
    )
