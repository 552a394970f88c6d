"""Charge and refund as the order saga sends them, through the chassis inbox."""

from decimal import Decimal

import pytest

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import ChargePayment, RefundPayment
from tests.service_harness import ServiceHarness


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


async def test_refund_of_a_declined_or_missing_payment_does_nothing(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1", token="tok_decline"))
    await payment.deliver(RefundPayment(order_id="o1", idempotency_key="k1"))
    await payment.deliver(RefundPayment(order_id="o2", idempotency_key="k2"))
    assert [r.type for r in await payment.outbox_events()] == ["payment.declined"]
    [recorded] = await _payments(payment, "o1")
    assert (recorded["status"], recorded["refunded_amount"]) == ("DECLINED", 0)


async def test_charge_after_refund_never_confirms_again(payment: ServiceHarness) -> None:
    await payment.deliver(_charge("o1"))
    await payment.deliver(RefundPayment(order_id="o1", idempotency_key="k1"))
    await payment.deliver(_charge("o1"))
    last = (await payment.outbox_events())[-1]
    assert (last.type, last.data["reason"]) == ("payment.failed", "refunded")
