"""The versioning rule in practice: tolerant readers, the envelope's version, additive changes."""

from __future__ import annotations

import types
import typing
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from msashop.contracts.envelope import Envelope, wrap
from msashop.contracts.events import OrderCreated, Payload, ShippingQuoteRequest
from msashop.contracts.schema import payload_classes


def sample(model: type[BaseModel]) -> dict[str, Any]:
    """Data with every required field of `model` filled in (optional ones left out)."""
    return {name: _value(f.annotation) for name, f in model.model_fields.items() if f.is_required()}


def _value(annotation: Any) -> Any:
    if annotation is str:
        return "x"
    if annotation is int:
        return 1
    if annotation is Decimal:
        return "1.50"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        return [_value(typing.get_args(annotation)[0])]
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in typing.get_args(annotation) if a is not type(None)))
    raise AssertionError(f"add a sample value for {annotation!r}")


@pytest.mark.parametrize("model", payload_classes(), ids=lambda cls: cls.subject)
def test_every_payload_ignores_unknown_fields(model: type[Payload]) -> None:
    data = sample(model) | {"added_by_a_newer_producer": {"any": "thing"}}
    parsed = model.model_validate(data)
    assert "added_by_a_newer_producer" not in parsed.model_dump()
    assert model.model_validate(parsed.model_dump(mode="json")) == parsed


@pytest.mark.parametrize("model", payload_classes(), ids=lambda cls: cls.subject)
def test_every_payload_has_a_major_minor_version(model: type[Payload]) -> None:
    major, minor = model.version.split(".")
    assert major.isdigit() and minor.isdigit()


class GreetingV1_0(Payload):
    subject = "test.greeting"
    version = "1.0"
    name: str


class GreetingV1_1(Payload):
    subject = "test.greeting"
    version = "1.1"
    name: str
    language: str | None = None


def test_a_v1_0_reader_reads_a_v1_1_message_and_ignores_the_added_field() -> None:
    envelope = wrap(GreetingV1_1(name="Ada", language="en"), source="test", key="k")
    assert envelope.metadata.version == "1.1"
    assert envelope.data == {"name": "Ada", "language": "en"}
    assert GreetingV1_0.model_validate(envelope.data) == GreetingV1_0(name="Ada")


def test_a_v1_1_reader_reads_a_v1_0_message_without_the_optional_field() -> None:
    envelope = Envelope.from_bytes(wrap(GreetingV1_0(name="Ada"), source="test", key="k").to_bytes())
    assert envelope.metadata.version == "1.0"
    read = GreetingV1_1.model_validate(envelope.data)
    assert (read.name, read.language) == ("Ada", None)


def test_order_created_1_0_messages_still_read_without_shipping_cost() -> None:
    data = {"order_id": "o1", "user_id": "u1", "lines": [], "total": "10.00", "currency": "USD"}
    created = OrderCreated.model_validate(data)
    assert created.shipping_cost is None and OrderCreated.version == "1.1"


def test_wrap_puts_the_payload_version_ids_and_trace_context_in_the_envelope() -> None:
    cause = Envelope(source="a", type="x.y", key="o1", correlation_id="c1", traceparent="00-abc-def-01")
    request = ShippingQuoteRequest(
        country="GB", postal_code="LS1", items=[], subtotal=Decimal("5"), currency="USD"
    )
    envelope = wrap(request, source="order", key="o1", cause=cause)
    assert envelope.type == "shipping.calculate" and envelope.metadata.version == "1.0"
    assert (envelope.correlation_id, envelope.causation_id) == ("c1", cause.id)
    assert envelope.traceparent == "00-abc-def-01"
    assert envelope.timestamp.tzinfo is not None
