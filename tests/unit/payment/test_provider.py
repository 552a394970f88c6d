"""The simulated provider per test token, and how the handlers decide on its answers."""

import time
from decimal import Decimal

import pytest

from msashop.contracts.events import ChargePayment
from msashop.services.payment.domain import ChargeResult, PaymentStatus, ProviderError
from msashop.services.payment.handlers import Decision, PaymentHandlers
from msashop.services.payment.provider import SimulatedProvider


def _charge(token: str, amount: str = "10.00") -> ChargePayment:
    return ChargePayment(
        order_id="o1",
        user_id="u1",
        amount=Decimal(amount),
        currency="USD",
        token=token,
        idempotency_key="saga1:charge",
    )


def _handlers(provider: object, timeout: float = 0.05) -> PaymentHandlers:
    return PaymentHandlers(provider, timeout=timeout, attempts=3, backoff=0.01)  # type: ignore[arg-type]


async def _ask(provider: SimulatedProvider, token: str, key: str = "k1") -> ChargeResult:
    return await provider.charge(token=token, amount=Decimal("1"), currency="USD", idempotency_key=key)


async def test_tok_visa_is_approved_with_a_reference() -> None:
    result = await _ask(SimulatedProvider(), "tok_visa")
    assert result.approved and result.reference.startswith("sim_")


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_decline", "card_declined"), ("tok_bogus", "invalid_token")]
)
async def test_declined_tokens(token: str, reason: str) -> None:
    result = await _ask(SimulatedProvider(), token)
    assert not result.approved and result.decline_reason == reason


async def test_tok_error_fails_every_time() -> None:
    provider = SimulatedProvider()
    for _ in range(3):
        with pytest.raises(ProviderError):
            await _ask(provider, "tok_error")


async def test_tok_refund_fail_captures_but_its_refunds_fail_every_time() -> None:
    provider = SimulatedProvider()
    captured = await _ask(provider, "tok_refund_fail")
    assert captured.approved and captured.reference
    for key in ("r1", "r1", "r2"):
        with pytest.raises(ProviderError):
            await provider.refund(reference=captured.reference, amount=Decimal("1"), idempotency_key=key)


async def test_a_capture_refunds_once_per_idempotency_key() -> None:
    provider = SimulatedProvider()
    captured = await _ask(provider, "tok_visa")
    first = await provider.refund(reference=captured.reference, amount=Decimal("1"), idempotency_key="r1")
    assert first.startswith("sim_")
    assert (
        await provider.refund(reference=captured.reference, amount=Decimal("1"), idempotency_key="r1")
        == first
    )


async def test_a_restarted_simulator_still_fails_tok_refund_fail_refunds() -> None:
    # The simulator keeps charges in memory; a payment service restart must not change refunds.
    captured = await _ask(SimulatedProvider(), "tok_refund_fail")
    with pytest.raises(ProviderError):
        await SimulatedProvider().refund(
            reference=captured.reference, amount=Decimal("1"), idempotency_key="r"
        )


async def test_the_same_idempotency_key_is_answered_from_the_first_charge() -> None:
    provider = SimulatedProvider()
    first = await _ask(provider, "tok_visa", key="order:o1")
    assert await _ask(provider, "tok_visa", key="order:o1") == first
    assert await _ask(provider, "tok_visa", key="order:o2") != first


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        ("tok_visa", (PaymentStatus.CAPTURED, None)),
        ("tok_decline", (PaymentStatus.DECLINED, "card_declined")),
        ("tok_other", (PaymentStatus.DECLINED, "invalid_token")),
        ("tok_error", (PaymentStatus.FAILED, "provider_error")),
        ("tok_slow", (PaymentStatus.FAILED, "provider_timeout")),
    ],
)
async def test_charge_outcome_per_token(token: str, outcome: tuple[PaymentStatus, str | None]) -> None:
    handlers = _handlers(SimulatedProvider(slow_delay=0.5))
    decision = await handlers.decide(_charge(token))
    assert (decision.status, decision.reason) == outcome
    assert (decision.reference is not None) == (decision.status is PaymentStatus.CAPTURED)


async def test_defaults_keep_the_slow_token_failure_under_five_seconds() -> None:
    handlers = PaymentHandlers(SimulatedProvider(slow_delay=2.0), timeout=0.5, attempts=3, backoff=0.1)
    started = time.perf_counter()
    assert await handlers.decide(_charge("tok_slow")) == Decision(PaymentStatus.FAILED, "provider_timeout")
    assert time.perf_counter() - started < 5


class FlakyProvider:
    """Fails `failures` times, then approves."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def charge(self, **_: object) -> ChargeResult:
        if self.failures:
            self.failures -= 1
            raise ProviderError("blip")
        return ChargeResult(approved=True, reference="ok")


async def test_a_provider_outage_shorter_than_the_retries_still_captures() -> None:
    assert await _handlers(FlakyProvider(failures=2)).decide(_charge("tok_visa")) == Decision(
        PaymentStatus.CAPTURED, reference="ok"
    )
    assert await _handlers(FlakyProvider(failures=3)).decide(_charge("tok_visa")) == Decision(
        PaymentStatus.FAILED, "provider_error"
    )


async def test_an_invalid_amount_is_declined_without_asking_the_provider() -> None:
    # tok_error would fail if the provider were asked: the amount is refused first.
    assert await _handlers(SimulatedProvider()).decide(_charge("tok_error", amount="0")) == Decision(
        PaymentStatus.DECLINED, "invalid_amount"
    )
