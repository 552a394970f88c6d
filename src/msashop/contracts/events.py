"""Event and command payloads. The subject is `<aggregate>.<event>`; the key is the aggregate id.

Versioning (contracts/README.md): every payload has a `version` "major.minor" that `wrap` puts in
the envelope's `metadata.version`. An added optional field bumps the minor version; removing,
renaming or retyping a field is a new major version. Consumers ignore unknown fields and
tolerate missing optional ones. The JSON Schemas in contracts/schemas/ are generated from here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """Base for every payload: the subject it travels on and how consumers read it."""

    model_config = ConfigDict(extra="ignore")
    subject: ClassVar[str]
    version: ClassVar[str] = "1.0"


class OrderLine(BaseModel):
    product_id: str
    quantity: int
    unit_price: Decimal = Decimal("0")


# --- user -----------------------------------------------------------------------------------
class UserRegistered(Payload):
    subject = "user.registered"
    user_id: str
    email: str
    name: str


# Session events for audit. No secrets: never a password, hash or token, and no email on a failed
# attempt (people type passwords into the email field).
class UserLoggedIn(Payload):
    subject = "user.logged_in"
    user_id: str
    session_id: str  # the token family; not a credential
    ip: str | None = None


class UserLoggedOut(Payload):
    subject = "user.logged_out"
    user_id: str
    session_ids: list[str]  # every session the logout ended


class UserLoginFailed(Payload):
    subject = "user.login_failed"
    user_id: str | None = None  # None: no account has the email given
    reason: str  # "wrong_password" or "unknown_email"
    ip: str | None = None


# --- product --------------------------------------------------------------------------------
class ProductCreated(Payload):
    subject = "product.created"
    # 1.1: description, category, currency, so a consumer can hold the whole product (legacy sync)
    version = "1.1"
    product_id: str
    sku: str
    name: str
    price: Decimal
    initial_stock: int = 0
    description: str | None = None
    category: str | None = None
    currency: str | None = None


class ProductUpdated(Payload):
    subject = "product.updated"
    # 1.1: description, category (the product's values after the change, like name and price)
    version = "1.1"
    product_id: str
    name: str
    price: Decimal
    description: str | None = None
    category: str | None = None


class ProductDeleted(Payload):
    subject = "product.deleted"
    product_id: str


# --- order ----------------------------------------------------------------------------------
class OrderCreated(Payload):
    subject = "order.created"
    version = "1.1"  # 1.1: shipping_cost (the total includes it)
    order_id: str
    user_id: str
    lines: list[OrderLine]
    total: Decimal
    currency: str
    shipping_cost: Decimal | None = None


class OrderConfirmed(Payload):
    subject = "order.confirmed"
    order_id: str
    user_id: str
    total: Decimal
    currency: str


class OrderCancelled(Payload):
    subject = "order.cancelled"
    order_id: str
    user_id: str
    reason: str


# --- inventory commands and replies ---------------------------------------------------------
class ReserveStock(Payload):
    subject = "inventory.reserve"
    order_id: str
    lines: list[OrderLine]
    idempotency_key: str


class ReleaseStock(Payload):
    subject = "inventory.release"
    order_id: str
    idempotency_key: str


class CommitStock(Payload):
    subject = "inventory.commit"
    order_id: str
    idempotency_key: str


class StockReserved(Payload):
    subject = "inventory.reserved"
    order_id: str


class StockReservationFailed(Payload):
    subject = "inventory.reservation_failed"
    order_id: str
    reason: str
    product_id: str | None = None


class StockReleased(Payload):
    subject = "inventory.released"
    order_id: str


class StockCommitted(Payload):
    subject = "inventory.committed"
    order_id: str


# --- payment commands and replies -----------------------------------------------------------
class ChargePayment(Payload):
    subject = "payment.charge"
    order_id: str
    user_id: str
    amount: Decimal
    currency: str
    token: str
    idempotency_key: str


class RefundPayment(Payload):
    subject = "payment.refund"
    order_id: str
    idempotency_key: str


class PaymentCaptured(Payload):
    subject = "payment.captured"
    order_id: str
    payment_id: str
    amount: Decimal


class PaymentDeclined(Payload):
    subject = "payment.declined"
    order_id: str
    reason: str


class PaymentFailed(Payload):
    subject = "payment.failed"
    order_id: str
    reason: str


class PaymentRefunded(Payload):
    subject = "payment.refunded"
    order_id: str
    payment_id: str
    amount: Decimal


class PaymentRefundSkipped(Payload):
    """The answer to a refund of an order with nothing captured (declined, failed, never charged)."""

    subject = "payment.refund_skipped"
    order_id: str
    reason: str  # "nothing_captured"


class PaymentRefundFailed(Payload):
    """The provider would not give the money back: a compensation failed, an operator must act."""

    subject = "payment.refund_failed"
    order_id: str
    payment_id: str
    reason: str


# --- notification command and replies (the saga's last step) -------------------------------
class SendNotification(Payload):
    """Tell the order's user about it. The idempotency key makes a resent command send once."""

    subject = "notification.send"
    order_id: str
    user_id: str
    type: str  # "order_confirmed"
    total: Decimal
    currency: str
    idempotency_key: str


class NotificationSent(Payload):
    subject = "notification.sent"
    order_id: str
    notification_id: str
    delivered_via: str  # "email" or "recorded" (kept in the user's in-app list only)


class NotificationFailed(Payload):
    """Nothing was recorded or sent; the saga tries again later. Never cancels the order."""

    subject = "notification.failed"
    order_id: str
    reason: str


# --- admin alerts ---------------------------------------------------------------------------
class SagaCompensationFailed(Payload):
    """A saga could not undo a step: money or stock may be held. Every admin is told."""

    subject = "order.compensation_failed"
    order_id: str
    saga_id: str
    step: str
    reason: str


# --- shipping RPC (request/reply over the bus, not events) ---------------------------------
class ShippingItem(BaseModel):
    product_id: str
    quantity: int
    weight_kg: Decimal | None = None  # unknown: the shipping service assumes a default


class ShippingQuoteRequest(Payload):
    """Asks the shipping service what delivering these items to this destination costs."""

    subject = "shipping.calculate"
    country: str  # ISO 3166-1 alpha-2
    postal_code: str
    items: list[ShippingItem]
    subtotal: Decimal
    currency: str


class ShippingQuote(Payload):
    """The reply to `shipping.calculate`."""

    subject = "shipping.calculate.reply"
    cost: Decimal
    currency: str
    service_level: str
    estimated_days: int
