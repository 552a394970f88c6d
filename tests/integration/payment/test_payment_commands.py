"""Charge and refund as the order saga sends them, through the chassis inbox."""

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import ChargePayment, RefundPayment
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.db import payments
from msashop.services.payment.domain import ProviderError
from msashop.services.payment.main import create_service
from msashop.services.payment.provider import SimulatedProvider
from tests.service_harness import ServiceHarness, running


def _charge(order_id: str, token: str = "tok_visa", amount: str = "42.50") -> ChargePayment:
    return ChargePayment(
        order_id=order_id,
        user_id="u1",
        amount=Decimal(amount),
        currency="USD",
        token=token,
        idempotency_key=f"saga-{order_id}:charge",
    )


async def _payments(payment: ServiceHarness, order_id: str, user_id: str = "u1") -> list[dict]:
    response = await payment.client.get(
        "/payments", params={"order_id": order_id}, headers=payment.auth_headers(user_id)
    )
    assert response.status_code == 200
    return response.json()


async def test_tok_visa_is_captured_once(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1"), event_id=deterministic_id("saga-o1", "charge"))
    [reply] = await payment.outbox_events()
    assert reply.type == "payment.captured" and reply.key == "o1"
    [recorded] = await _payments(payment, "o1")
    assert recorded["status"] == "CAPTURED" and recorded["amount"] == 42.5
    assert reply.data == {"order_id": "o1", "payment_id": recorded["id"], "amount": "42.50"}


async def test_the_same_command_delivered_twice_has_one_effect(payment: ServiceHarness) -> None:
    command = _charge("o1")
    await payment.deliver(command, event_id=deterministic_id("saga-o1", "charge"))
    await payment.deliver(command, event_id=deterministic_id("saga-o1", "charge"))
    assert [r.type for r in await payment.outbox_events()] == ["payment.captured"]
    assert len(await _payments(payment, "o1")) == 1


async def test_a_second_charge_for_the_order_repeats_the_recorded_outcome(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1", token="tok_decline"))
    # A retry with a good card must not charge again: the order's payment is decided.
    await payment.deliver(_charge("o1", token="tok_visa"))
    replies = await payment.outbox_events()
    assert [(r.type, r.data["reason"]) for r in replies] == [
        ("payment.declined", "card_declined"),
        ("payment.declined", "card_declined"),
    ]
    assert [p["status"] for p in await _payments(payment, "o1")] == ["DECLINED"]


@pytest.mark.parametrize(
    ("token", "subject", "reason"),
    [
        ("tok_decline", "payment.declined", "card_declined"),
        ("tok_nope", "payment.declined", "invalid_token"),
        ("tok_error", "payment.failed", "provider_error"),
        ("tok_slow", "payment.failed", "provider_timeout"),
    ],
)
async def test_unsuccessful_charges_are_recorded_and_answered(
    payment: ServiceHarness, token: str, subject: str, reason: str
) -> None:
    await payment.deliver(_charge("o1", token=token))
    [reply] = await payment.outbox_events()
    assert (reply.type, reply.data["reason"]) == (subject, reason)
    [recorded] = await _payments(payment, "o1")
    assert recorded["status"] == subject.split(".")[1].upper()


async def test_refund_of_a_capture(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1"))
    refund = RefundPayment(order_id="o1", idempotency_key="saga-o1:refund")
    await payment.deliver(refund)
    await payment.deliver(refund)  # a new command id: answered again, refunded once
    [recorded] = await _payments(payment, "o1")
    assert (recorded["status"], recorded["refunded_amount"]) == ("REFUNDED", 42.5)
    replies = await payment.outbox_events()
    assert [r.type for r in replies] == ["payment.captured", "payment.refunded", "payment.refunded"]
    assert replies[1].data == {"order_id": "o1", "payment_id": recorded["id"], "amount": "42.50"}


async def test_a_resent_refund_is_answered_again_under_an_id_of_its_own(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1"))
    refund = RefundPayment(order_id="o1", idempotency_key="saga-o1:refund")
    first = await payment.deliver(refund, event_id="refund-1")
    await payment.deliver(refund, event_id="refund-1")  # redelivered: the inbox skips it
    resent = await payment.deliver(refund, event_id="refund-2")  # after a step timeout
    replies = [r for r in await payment.outbox_events() if r.type == "payment.refunded"]
    assert [r.causation_id for r in replies] == [first.id, resent.id]
    assert [r.id for r in replies] == [
        deterministic_id("payment", command.id, "payment.refunded") for command in (first, resent)
    ]
    assert replies[0].data == replies[1].data


@pytest.mark.parametrize(
    ("token", "status"), [("tok_decline", "DECLINED"), ("tok_error", "FAILED"), (None, None)]
)
async def test_refund_with_nothing_captured_is_answered_skipped(
    payment: ServiceHarness, token: str | None, status: str | None
) -> None:
    if token is not None:
        await payment.deliver(_charge("o1", token=token))
    refund = RefundPayment(order_id="o1", idempotency_key="saga-o1:refund")
    await payment.deliver(refund)
    await payment.deliver(refund)  # resent: answered the same
    skipped = [r for r in await payment.outbox_events() if r.type.startswith("payment.refund")]
    assert [(r.type, r.data) for r in skipped] == 2 * [
        ("payment.refund_skipped", {"order_id": "o1", "reason": "nothing_captured"})
    ]
    recorded = await _payments(payment, "o1")
    assert [(p["status"], p["refunded_amount"]) for p in recorded] == ([(status, 0)] if status else [])


async def test_a_refund_the_provider_refuses_is_answered_failed_and_keeps_the_capture(
    payment: ServiceHarness,
) -> None:
    await payment.deliver(_charge("o1", token="tok_refund_fail"))
    refund = RefundPayment(order_id="o1", idempotency_key="saga-o1:refund")
    await payment.deliver(refund)
    await payment.deliver(refund)  # resent: tried again, refused again
    [recorded] = await _payments(payment, "o1")
    assert (recorded["status"], recorded["refunded_amount"]) == ("CAPTURED", 0)
    replies = await payment.outbox_events()
    assert [r.type for r in replies] == ["payment.captured", "payment.refund_failed", "payment.refund_failed"]
    assert replies[1].data == {"order_id": "o1", "payment_id": recorded["id"], "reason": "provider_error"}
    async with payment.service.unit_of_work() as uow:
        reason = await uow.session.scalar(sa.select(payments.c.reason).where(payments.c.order_id == "o1"))
    assert reason == "refund_provider_error"


class RecoveringProvider(SimulatedProvider):
    """Refunds fail (every retry of the first command) until `recovered` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.recovered = False
        self.refunds_asked = 0

    async def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        self.refunds_asked += 1
        if not self.recovered:
            raise ProviderError("provider outage")
        return await super().refund(reference=reference, amount=amount, idempotency_key=idempotency_key)


async def test_a_resent_refund_tries_the_provider_again(tmp_path: Path) -> None:
    provider = RecoveringProvider()
    settings = PaymentSettings.load("payment", data_dir=tmp_path, provider_backoff_seconds=0.01)
    async with running(create_service(settings, bus=InMemoryBus(), provider=provider)) as app:
        await app.deliver(_charge("o1"))
        refund = RefundPayment(order_id="o1", idempotency_key="saga-o1:refund")
        await app.deliver(refund)
        assert provider.refunds_asked == settings.provider_attempts
        provider.recovered = True
        await app.deliver(refund)
        [recorded] = await _payments(app, "o1")
        replies = [r.type for r in await app.outbox_events()]
    assert replies == ["payment.captured", "payment.refund_failed", "payment.refunded"]
    assert (recorded["status"], recorded["refunded_amount"]) == ("REFUNDED", 42.5)


async def test_charge_after_refund_never_confirms_again(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1"))
    await payment.deliver(RefundPayment(order_id="o1", idempotency_key="k1"))
    await payment.deliver(_charge("o1"))
    last = (await payment.outbox_events())[-1]
    assert (last.type, last.data["reason"]) == ("payment.failed", "refunded")
