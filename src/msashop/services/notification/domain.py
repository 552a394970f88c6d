"""Notifications: what a user is told, and when. No I/O here.

A notification is recorded whether or not an email went out: the record is what the user sees
in the shop, the email a courtesy. Each order gets at most one notification of each type, and
each user at most one welcome.
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
