"""Payments and the payment provider port: the rules, no I/O.

One payment per order. Its status is final once recorded, except that a CAPTURED payment can be
refunded in full. A refund the provider refused leaves it CAPTURED (the reason is kept), so a
later refund command tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class PaymentStatus(StrEnum):
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class ProviderError(Exception):
    """The provider could not answer (outage, 5xx): worth trying again."""


@dataclass(frozen=True)
class ChargeResult:
    """What the provider decided. A decline is an answer, not an error: never retried."""

    approved: bool
    reference: str = ""
    decline_reason: str = ""


class PaymentProvider(Protocol):
    async def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Capture `amount`; the same `idempotency_key` never captures twice."""
        ...

    async def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        """Give `amount` of the capture `reference` back; returns the refund's reference.

        Raises ProviderError when it cannot; the same `idempotency_key` never refunds twice.
        """
        ...


@dataclass
class Payment:
    id: str
    order_id: str
    user_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    refunded_amount: Decimal = Decimal("0")
    # The provider's id of the capture, which a refund names (None before it was recorded).
    provider_reference: str | None = None

    def refund(self, now: datetime) -> bool:
        """CAPTURED -> REFUNDED in full. False (nothing changed) in any other state."""
        if self.status is not PaymentStatus.CAPTURED:
            return False
        self.status = PaymentStatus.REFUNDED
        self.refunded_amount = self.amount
        self.reason = None  # a refund that failed before no longer matters
        self.updated_at = now
        return True

    def refund_failed(self, reason: str, now: datetime) -> None:
        """The provider would not refund: the payment stays CAPTURED and says why."""
        if self.status is not PaymentStatus.CAPTURED:
            raise ValueError(f"only a captured payment has a refund to fail, not {self.status}")
        self.reason = f"refund_{reason}"
        self.updated_at = now

    def visible_to(self, user_id: str, *, is_admin: bool) -> bool:
        return is_admin or self.user_id == user_id


def validate_amount(amount: Decimal) -> str | None:
    """Why an amount cannot be charged at all (None if it can): checked before the provider."""
    if amount <= 0:
        return "invalid_amount"
    if amount != amount.quantize(Decimal("0.01")):
        return "invalid_amount"
    return None
