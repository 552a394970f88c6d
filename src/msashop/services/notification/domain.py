"""Notifications: what a user (or every admin) is told, and when. No I/O here.

A notification is recorded whether or not an email went out: the record is what the user sees
in the shop, the email a courtesy. Each order gets at most one notification of each type, each
user at most one welcome, and each failed compensation step of an order one admin alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class NotificationType(StrEnum):
    WELCOME = "welcome"
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_CANCELLED = "order_cancelled"
    ADMIN_ALERT = "admin_alert"


class Audience(StrEnum):
    """Who sees a notification: its user, or every admin (whoever they are when they look)."""

    USER = "user"
    ADMINS = "admins"


# The user_id of a notification for the admins: no user's id, and never listed as one's own.
ADMINS_ID = "admins"


class DeliveredVia(StrEnum):
    EMAIL = "email"
    RECORDED = "recorded"  # stored only: no mail server, no known address, or sending failed


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str
    name: str


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


class Sender(Protocol):
    async def send(self, email: Email) -> DeliveredVia:
        """Deliver the email or only record it; raises if delivery was attempted and failed."""
        ...


@dataclass
class Notification:
    id: str
    user_id: str
    type: NotificationType
    order_id: str | None
    message: str
    created_at: datetime
    delivered_via: DeliveredVia = DeliveredVia.RECORDED
    audience: Audience = Audience.USER
    step: str | None = None  # admin alerts: the saga step that could not be undone


@dataclass(frozen=True)
class Draft:
    """A notification before it is recorded: its type, subject line and message."""

    type: NotificationType
    subject: str
    message: str
    order_id: str | None = None

    def email_to(self, recipient: Recipient) -> Email:
        return Email(
            to=recipient.email, subject=self.subject, body=f"Hello {recipient.name},\n\n{self.message}\n"
        )

    def email_to_admins(self, address: str) -> Email:
        return Email(to=address, subject=self.subject, body=f"{self.message}\n")


def welcome(name: str) -> Draft:
    return Draft(
        NotificationType.WELCOME, "Welcome to msashop", f"Welcome to msashop, {name}! Your account is ready."
    )


def order_confirmed(order_id: str, total: Decimal, currency: str) -> Draft:
    return Draft(
        NotificationType.ORDER_CONFIRMED,
        "Your order is confirmed",
        f"Your order {order_id} is confirmed. Total: {total:.2f} {currency}.",
        order_id,
    )


def order_cancelled(order_id: str, reason: str) -> Draft:
    return Draft(
        NotificationType.ORDER_CANCELLED,
        "Your order was cancelled",
        f"Your order {order_id} was cancelled (reason: {reason}).",
        order_id,
    )


def admin_alert(order_id: str, saga_id: str, step: str, reason: str) -> Draft:
    return Draft(
        NotificationType.ADMIN_ALERT,
        f"Action needed: order {order_id} could not be compensated",
        f"Order {order_id}: the compensation step {step} failed (reason: {reason}; saga {saga_id}). "
        "Money or stock may still be held for it: settle it by hand.",
        order_id,
    )
