"""How the refund handler asks the provider: retries like a charge, and says why it gave up."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from msashop.services.payment.domain import Payment, PaymentStatus, ProviderError
from msashop.services.payment.handlers import PaymentHandlers

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _captured(reference: str | None = "ch_1") -> Payment:
    return Payment(
        id="pay1",
        order_id="o1",
        user_id="u1",
        amount=Decimal("12.50"),
        currency="USD",
        status=PaymentStatus.CAPTURED,
        created_at=NOW,
        updated_at=NOW,
        provider_reference=reference,
    )


class RefundDesk:
    """A provider whose refunds fail `failures` times (or take `delay` s each), then succeed."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.asked: list[tuple[str, Decimal, str]] = []

    async def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        self.asked.append((reference, amount, idempotency_key))
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise ProviderError("outage")
        return "re_1"


def _handlers(provider: RefundDesk) -> PaymentHandlers:
    return PaymentHandlers(provider, timeout=0.05, attempts=3, backoff=0.01)  # type: ignore[arg-type]


async def test_the_provider_is_asked_for_the_capture_and_its_amount_once_per_order() -> None:
    desk = RefundDesk()
    assert await _handlers(desk).refund_at_provider(_captured()) is None
    assert desk.asked == [("ch_1", Decimal("12.50"), "order:o1:refund")]


async def test_an_outage_shorter_than_the_retries_still_refunds() -> None:
    desk = RefundDesk(failures=2)
    assert await _handlers(desk).refund_at_provider(_captured()) is None
    assert len(desk.asked) == 3


async def test_after_the_retries_the_reason_is_given() -> None:
    desk = RefundDesk(failures=3)
    assert await _handlers(desk).refund_at_provider(_captured()) == "provider_error"
    assert len(desk.asked) == 3
    slow = RefundDesk(delay=1.0)
    assert await _handlers(slow).refund_at_provider(_captured()) == "provider_timeout"


async def test_a_payment_without_a_recorded_reference_still_asks_the_provider() -> None:
    desk = RefundDesk()
    assert await _handlers(desk).refund_at_provider(_captured(reference=None)) is None
    assert [reference for reference, _, _ in desk.asked] == [""]
