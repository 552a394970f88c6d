"""The read side's rules, without I/O: how each stored order event changes the views.

`project` builds the order view (detail and the per-user list) from the raw stored events, on
its own: it never calls the aggregate, so the property test that compares the two
(tests/unit/order/test_read_model.py) can catch either of them drifting. `analytics_delta`
says what one view change does to the counts and revenue by status and by day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
# Revenue counts orders whose money was taken and not given back.
PAID = frozenset({"CONFIRMED", "SHIPPED"})
STATUS_OF = {
    "OrderPlaced": "PENDING",
    "OrderConfirmed": "CONFIRMED",
    "OrderCancelled": "CANCELLED",
    "OrderShipped": "SHIPPED",
}


class ProjectionError(ValueError):
    """An event that cannot follow the view it is applied to (a gap or a foreign first event)."""


@dataclass(frozen=True)
class LineView:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class OrderView:
    id: str
    user_id: str
    status: str
    status_reason: str | None
    lines: tuple[LineView, ...]
    shipping_cost: Decimal
    currency: str
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def total(self) -> Decimal:
        items = sum((line.line_total for line in self.lines), Decimal("0"))
        return (items + self.shipping_cost).quantize(CENT, ROUND_HALF_UP)

    @property
    def day(self) -> str:
        return self.created_at.date().isoformat()


def project(
    view: OrderView | None, aggregate_id: str, version: int, type_: str, data: dict[str, Any]
) -> OrderView:
    """The view after one more event. Version N must follow version N-1 exactly."""
    expected = 1 if view is None else view.version + 1
    if version != expected:
        raise ProjectionError(f"{aggregate_id}: event version {version}, the view expects {expected}")
    at = datetime.fromisoformat(data["at"])
    if view is None:
        if type_ != "OrderPlaced":
            raise ProjectionError(f"{aggregate_id}: the first event is {type_}, not OrderPlaced")
        return OrderView(
            id=aggregate_id,
            user_id=data["user_id"],
            status="PENDING",
            status_reason=None,
            lines=tuple(
                LineView(line["product_id"], line["name"], int(line["quantity"]), Decimal(line["unit_price"]))
                for line in data["lines"]
            ),
            shipping_cost=Decimal(data["shipping_cost"]),
            currency=data["currency"],
            shipping_address=dict(data["shipping_address"]),
            created_at=at,
            updated_at=at,
            version=version,
        )
    try:
        status = STATUS_OF[type_]
    except KeyError:
        raise ProjectionError(f"{aggregate_id}: unknown event type {type_}") from None
    reason = data.get("reason") if type_ == "OrderCancelled" else view.status_reason
    return replace(view, status=status, status_reason=reason, updated_at=at, version=version)


@dataclass(frozen=True)
class AnalyticsDelta:
    by_status: tuple[tuple[str, int, Decimal], ...]  # (status, count change, revenue change)
    day: str
    day_count: int
    day_revenue: Decimal


def analytics_delta(before: OrderView | None, after: OrderView) -> AnalyticsDelta:
    changes: list[tuple[str, int, Decimal]] = []
    if before is not None:
        changes.append((before.status, -1, -before.total))
    changes.append((after.status, 1, after.total))
    paid_before = before is not None and before.status in PAID
    revenue = (after.total if after.status in PAID else Decimal("0")) - (
        before.total if paid_before and before is not None else Decimal("0")
    )
    return AnalyticsDelta(tuple(changes), after.day, 1 if before is None else 0, revenue)


@dataclass
class Analytics:
    """Counts and revenue by status (every order's total) and by day (paid orders' revenue)."""

    by_status: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    by_day: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    def add(self, delta: AnalyticsDelta) -> None:
        for status, count, revenue in delta.by_status:
            old_count, old_revenue = self.by_status.get(status, (0, Decimal("0")))
            self.by_status[status] = (old_count + count, old_revenue + revenue)
        old_count, old_revenue = self.by_day.get(delta.day, (0, Decimal("0")))
        self.by_day[delta.day] = (old_count + delta.day_count, old_revenue + delta.day_revenue)

    @classmethod
    def of(cls, views: Iterable[OrderView]) -> Analytics:
        """Straight from the final views: what the incremental deltas must add up to."""
        result = cls()
        for view in views:
            count, revenue = result.by_status.get(view.status, (0, Decimal("0")))
            result.by_status[view.status] = (count + 1, revenue + view.total)
            count, revenue = result.by_day.get(view.day, (0, Decimal("0")))
            paid = view.total if view.status in PAID else Decimal("0")
            result.by_day[view.day] = (count + 1, revenue + paid)
        return result
