"""What can happen to an order: the facts the event store keeps, the only record of an order.

These are the service's own domain events, not integration events (contracts/): they may carry
whatever the aggregate needs to rebuild itself and never leave the order service. Each knows
its stored `type` and turns itself into the JSON `data` of an event store row and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from msashop.services.order.domain.values import OrderLine, ShippingAddress


@dataclass(frozen=True)
class OrderPlaced:
    type: ClassVar[str] = "OrderPlaced"
    user_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    shipping_address: ShippingAddress
    shipping_cost: Decimal
    at: datetime

    def to_data(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "lines": [
                {
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": str(line.unit_price),
                }
                for line in self.lines
            ],
            "currency": self.currency,
            "shipping_address": self.shipping_address.to_data(),
            "shipping_cost": str(self.shipping_cost),
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderPlaced:
        return cls(
            user_id=data["user_id"],
            lines=tuple(
                OrderLine(
                    line["product_id"], line["name"], int(line["quantity"]), Decimal(line["unit_price"])
                )
                for line in data["lines"]
            ),
            currency=data["currency"],
            shipping_address=ShippingAddress(**data["shipping_address"]),
            shipping_cost=Decimal(data["shipping_cost"]),
            at=datetime.fromisoformat(data["at"]),
        )


@dataclass(frozen=True)
class OrderConfirmed:
    type: ClassVar[str] = "OrderConfirmed"
    payment_id: str
    at: datetime

    def to_data(self) -> dict[str, Any]:
        return {"payment_id": self.payment_id, "at": self.at.isoformat()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderConfirmed:
        return cls(payment_id=data["payment_id"], at=datetime.fromisoformat(data["at"]))


@dataclass(frozen=True)
class OrderCancelled:
    type: ClassVar[str] = "OrderCancelled"
    reason: str
    at: datetime
    was_confirmed: bool = False  # the money had been taken: the cancellation refunds it

    def to_data(self) -> dict[str, Any]:
        return {"reason": self.reason, "at": self.at.isoformat(), "was_confirmed": self.was_confirmed}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderCancelled:
        return cls(
            reason=data["reason"],
            at=datetime.fromisoformat(data["at"]),
            was_confirmed=bool(data.get("was_confirmed", False)),
        )


@dataclass(frozen=True)
class OrderShipped:
    type: ClassVar[str] = "OrderShipped"
    at: datetime

    def to_data(self) -> dict[str, Any]:
        return {"at": self.at.isoformat()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderShipped:
        return cls(at=datetime.fromisoformat(data["at"]))


OrderEvent = OrderPlaced | OrderConfirmed | OrderCancelled | OrderShipped

EVENT_TYPES: dict[str, type[OrderEvent]] = {
    cls.type: cls for cls in (OrderPlaced, OrderConfirmed, OrderCancelled, OrderShipped)
}


def event_from(type_: str, data: dict[str, Any]) -> OrderEvent:
    try:
        cls = EVENT_TYPES[type_]
    except KeyError:
        raise ValueError(f"unknown order event type {type_!r}") from None
    return cls.from_data(data)
