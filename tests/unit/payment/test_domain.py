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


def test_a_refused_refund_leaves_the_payment_captured_with_the_reason() -> None:
    payment = _payment(PaymentStatus.CAPTURED)
    payment.refund_failed("provider_error", NOW)
    assert (payment.status, payment.reason, payment.refunded_amount) == (
        PaymentStatus.CAPTURED,
        "refund_provider_error",
        Decimal("0"),
    )
    assert payment.refund(NOW) is True  # a later try can still succeed
    assert (payment.status, payment.reason) == (PaymentStatus.REFUNDED, None)


@pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.REFUNDED])
def test_only_a_captured_payment_has_a_refund_to_fail(status: PaymentStatus) -> None:
    with pytest.raises(ValueError, match="captured"):
        _payment(status).refund_failed("provider_error", NOW)


def test_payment_is_visible_to_its_owner_and_admins_only() -> None:
    payment = _payment(PaymentStatus.CAPTURED)
    assert payment.visible_to("u1", is_admin=False)
    assert payment.visible_to("someone", is_admin=True)
    assert not payment.visible_to("someone", is_admin=False)


@pytest.mark.parametrize("amount", ["0", "-1", "1.001"])
def test_amount_must_be_positive_with_cents(amount: str) -> None:
    assert validate_amount(Decimal(amount)) == "invalid_amount"
    assert validate_amount(Decimal("0.01")) is None
