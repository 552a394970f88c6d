"""The payment service's metrics, with the guide's names and labels."""

from __future__ import annotations

from prometheus_client import Histogram

from msashop.services.payment.domain import PaymentProvider

# The guide's buckets; the first three added because the simulated provider answers in milliseconds.
payment_processing_duration_seconds = Histogram(
    "payment_processing_duration_seconds",
    "Time to get a charge decided, retries included",
    ["provider", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
payment_amount_dollars = Histogram(
    "payment_amount_dollars",
    "Amounts captured",
    ["currency", "provider"],
    buckets=(1, 10, 50, 100, 500, 1000, 5000),
)


def provider_name(provider: PaymentProvider) -> str:
    """The `provider` label: the provider's `name`, else its class (bounded either way)."""
    return str(getattr(provider, "name", "") or type(provider).__name__.lower())
