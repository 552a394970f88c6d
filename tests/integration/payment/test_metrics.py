"""The payment service's metrics with the guide's names and labels: how long a charge took by
provider and outcome, captured amounts by currency and provider, and failed payments as errors."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY

from msashop.contracts.events import ChargePayment
from tests.service_harness import ServiceHarness


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _charge(order_id: str, token: str, amount: str = "42.50") -> ChargePayment:
    return ChargePayment(
        order_id=order_id,
        user_id="u1",
        amount=Decimal(amount),
        currency="USD",
        token=token,
        idempotency_key=f"saga-{order_id}:charge",
    )


async def test_charges_are_timed_by_provider_and_status_and_captures_measured(
    payment: ServiceHarness,
) -> None:
    captured = _sample("payment_processing_duration_seconds_count", provider="simulated", status="CAPTURED")
    declined = _sample("payment_processing_duration_seconds_count", provider="simulated", status="DECLINED")
    amounts = _sample("payment_amount_dollars_count", currency="USD", provider="simulated")
    total = _sample("payment_amount_dollars_sum", currency="USD", provider="simulated")
    declines = _sample("errors_total", type="payment_failure", code="card_declined")

    await payment.deliver(_charge("o-metrics-1", "tok_visa"))
    await payment.deliver(_charge("o-metrics-2", "tok_decline"))

    assert _sample("payment_processing_duration_seconds_count", provider="simulated", status="CAPTURED") == (
        captured + 1
    )
    assert _sample("payment_processing_duration_seconds_count", provider="simulated", status="DECLINED") == (
        declined + 1
    )
    assert _sample("payment_amount_dollars_count", currency="USD", provider="simulated") == amounts + 1
    assert _sample("payment_amount_dollars_sum", currency="USD", provider="simulated") == total + 42.5
    assert _sample("errors_total", type="payment_failure", code="card_declined") == declines + 1
