from datetime import UTC, datetime
from decimal import Decimal

import pytest

from msashop.services.payment.domain import Payment, PaymentStatus, validate_amount

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _payment(status: PaymentStatus) -> Payment:
    return Payment(
        id="pay1",
        order_id="o1",
        user_id="u1",
        amount=Decimal("12.50"),
        currency="USD",
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_captured_payment_is_refunded_in_full() -> None:
    payment = _payment(PaymentStatus.CAPTURED)
    assert payment.refund(NOW) is True
    assert payment.status is PaymentStatus.REFUNDED
    assert payment.refunded_amount == Decimal("12.50")


@pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.REFUNDED])
def test_only_a_captured_payment_can_be_refunded(status: PaymentStatus) -> None:
    payment = _payment(status)
    assert payment.refund(NOW) is False
    assert payment.status is status
    assert payment.refunded_amount == Decimal("0")


def test_payment_is_visible_to_its_owner_and_admins_only() -> None:
    payment = _payment(PaymentStatus.CAPTURED)
    assert payment.visible_to("u1", is_admin=False)
    assert payment.visible_to("someone", is_admin=True)
    assert not payment.visible_to("someone", is_admin=False)


@pytest.mark.parametrize("amount", ["0", "-1", "1.001"])
def test_amount_must_be_positive_with_cents(amount: str) -> None:
    assert validate_amount(Decimal(amount)) == "invalid_amount"
    assert validate_amount(Decimal("0.01")) is None
