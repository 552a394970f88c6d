"""The order's rules and the saga's state. No I/O here.

An `Order` is priced once, when it is placed, from the catalog's prices at that moment and the
shipping service's quote; after that only its status changes. A `Saga` is the orchestrator's
memory for one order: which step it is on and a log of every step with its outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
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


class InvalidTransition(ValueError):
    pass


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
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

    def __post_init__(self) -> None:
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise InvalidOrder(f"an order has 1..{MAX_LINES} lines")
        if len({line.product_id for line in self.lines}) != len(self.lines):
            raise InvalidOrder("a product appears on two lines")

    @property
    def subtotal(self) -> Decimal:
        """What the items cost, before shipping."""
        return sum((line.line_total for line in self.lines), Decimal("0")).quantize(CENT, ROUND_HALF_UP)

    @property
    def total(self) -> Decimal:
        return (self.subtotal + self.shipping_cost).quantize(CENT, ROUND_HALF_UP)

    def add_shipping(self, cost: Decimal, currency: str) -> None:
        """Price delivery with the shipping service's quote (once, before the order is stored)."""
        if currency != self.currency:
            raise InvalidOrder(f"shipping is quoted in {currency}, the order is in {self.currency}")
        if cost < 0:
            raise InvalidOrder("shipping cost must not be negative")
        self.shipping_cost = money(cost)

    @property
    def can_cancel(self) -> bool:
        return self.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED)

    def confirm(self, now: datetime) -> None:
        if self.status is not OrderStatus.PENDING:
            raise InvalidTransition(f"only a PENDING order can be confirmed, this one is {self.status}")
        self.status = OrderStatus.CONFIRMED
        self.updated_at = now

    def cancel(self, reason: str, now: datetime) -> None:
        if not self.can_cancel:
            raise InvalidTransition(f"the order is already {self.status}")
        self.status = OrderStatus.CANCELLED
        self.status_reason = reason
        self.updated_at = now

    def as_placed(self) -> Order:
        """The order as it was answered when placed: an idempotent replay gives that answer."""
        return replace(self, status=OrderStatus.PENDING, status_reason=None, updated_at=self.created_at)


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


def place_order(
    *,
    order_id: str,
    user_id: str,
    quantities: Mapping[str, int],
    catalog: Mapping[str, CatalogEntry],
    shipping_address: ShippingAddress,
    now: datetime,
) -> Order:
    """Price the requested quantities with the catalog. Every product must be known."""
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


# --- the saga --------------------------------------------------------------------------------
class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    # Not entered yet: compensations end the saga FAILED as soon as they are queued (outbox),
    # and their replies only close the logged steps. Waiting for them would use this state.
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Step(StrEnum):
    """Forward steps, then the compensations that undo them (in reverse order)."""

    CREATE_ORDER = "CREATE_ORDER"
    RESERVE_INVENTORY = "RESERVE_INVENTORY"
    PROCESS_PAYMENT = "PROCESS_PAYMENT"
    COMMIT_INVENTORY = "COMMIT_INVENTORY"
    REFUND_PAYMENT = "REFUND_PAYMENT"
    RELEASE_INVENTORY = "RELEASE_INVENTORY"


class StepStatus(StrEnum):
    RUNNING = "RUNNING"  # the command is queued; its reply has not arrived
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass
class SagaStep:
    name: Step
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


@dataclass
class Saga:
    id: str
    order_id: str
    deadline_at: datetime
    updated_at: datetime
    payment_token: str | None
    status: SagaStatus = SagaStatus.RUNNING
    step: Step = Step.CREATE_ORDER
    payment_id: str | None = None
    steps: list[SagaStep] = field(default_factory=list)

    @classmethod
    def start(
        cls, saga_id: str, order_id: str, payment_token: str, now: datetime, timeout: timedelta
    ) -> Saga:
        """The order row exists (CREATE_ORDER done) and the reservation is requested."""
        saga = cls(saga_id, order_id, now + timeout, now, payment_token)
        saga.steps.append(SagaStep(Step.CREATE_ORDER, StepStatus.COMPLETED, now, now))
        saga.begin(Step.RESERVE_INVENTORY, now)
        return saga

    @property
    def is_running(self) -> bool:
        return self.status is SagaStatus.RUNNING

    @property
    def charge_requested(self) -> bool:
        return any(s.name is Step.PROCESS_PAYMENT for s in self.steps)

    def begin(self, step: Step, now: datetime) -> None:
        self.steps.append(SagaStep(step, StepStatus.RUNNING, now))
        self.step = step
        self.updated_at = now

    def finish(self, step: Step, now: datetime, error: str | None = None) -> bool:
        """Record the reply to `step`'s command. False if no such step was waiting: a duplicate."""
        for entry in reversed(self.steps):
            if entry.name is step and entry.status is StepStatus.RUNNING:
                entry.status = StepStatus.FAILED if error else StepStatus.COMPLETED
                entry.finished_at = now
                entry.error = error
                self.updated_at = now
                return True
        return False

    def complete(self, now: datetime) -> None:
        self.status = SagaStatus.COMPLETED
        self._end(now)

    def compensate(self, steps: list[Step], now: datetime) -> None:
        """Log the compensations queued; a saga that had not finished ends FAILED.

        The compensating commands are in the outbox with the state change, so delivery is
        certain; their replies close the steps later. A COMPLETED saga (the user cancels a
        confirmed order) stays COMPLETED: its forward path did succeed.
        """
        for step in steps:
            self.begin(step, now)
        if self.status is not SagaStatus.COMPLETED:
            self.status = SagaStatus.FAILED
        self._end(now)

    def _end(self, now: datetime) -> None:
        self.payment_token = None  # card data is kept no longer than the saga needs it
        self.updated_at = now
