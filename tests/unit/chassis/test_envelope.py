"""The event envelope: ids chained from the cause, deterministic ids, tolerant reading."""

import json
from decimal import Decimal

from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import OrderLine, PaymentCaptured, ReserveStock


def test_wrap_uses_the_payload_subject_and_serialises_the_data() -> None:
    payload = PaymentCaptured(order_id="o1", payment_id="p1", amount=Decimal("12.50"))

    envelope = wrap(payload, source="payment", key="o1")

    assert envelope.type == "payment.captured"
    assert envelope.source == "payment"
    assert envelope.key == "o1"
    assert envelope.causation_id is None
    assert envelope.correlation_id == "o1"  # a new conversation is correlated by its key
    assert PaymentCaptured.model_validate(envelope.data) == payload


def test_wrap_chains_correlation_causation_and_trace_from_the_cause() -> None:
    cause = Envelope(
        source="order", type="payment.charge", key="o1", correlation_id="saga-1", traceparent="00-a-b-01"
    )

    reply = wrap(
        PaymentCaptured(order_id="o1", payment_id="p1", amount=Decimal(1)),
        source="payment",
        key="o1",
        cause=cause,
    )

    assert reply.causation_id == cause.id
    assert reply.correlation_id == "saga-1"
    assert reply.traceparent == "00-a-b-01"
    assert reply.id != cause.id


def test_wrap_keeps_a_given_event_id() -> None:
    envelope = wrap(
        ReserveStock(
            order_id="o1", lines=[OrderLine(product_id="p", quantity=1)], idempotency_key="s:reserve"
        ),
        source="order",
        key="o1",
        event_id="fixed-id",
    )

    assert envelope.id == "fixed-id"


def test_deterministic_id_is_stable_for_the_same_parts_and_differs_otherwise() -> None:
    first = deterministic_id("saga-1", "reserve")

    assert first == deterministic_id("saga-1", "reserve")
    assert first != deterministic_id("saga-1", "charge")
    assert first != deterministic_id("reserve", "saga-1")
    assert len(first) == 32 and int(first, 16) >= 0


def test_envelope_round_trips_through_bytes() -> None:
    envelope = wrap(
        PaymentCaptured(order_id="o1", payment_id="p1", amount=Decimal("3.10")), source="payment", key="o1"
    )

    assert Envelope.from_bytes(envelope.to_bytes()) == envelope


def test_readers_ignore_fields_they_do_not_know() -> None:
    envelope = wrap(
        PaymentCaptured(order_id="o1", payment_id="p1", amount=Decimal(5)), source="payment", key="o1"
    )
    raw = json.loads(envelope.to_bytes())
    raw["added_in_a_later_version"] = True
    raw["data"]["also_new"] = "x"

    read = Envelope.from_bytes(json.dumps(raw).encode())

    assert read.id == envelope.id
    assert PaymentCaptured.model_validate(read.data).amount == Decimal(5)
