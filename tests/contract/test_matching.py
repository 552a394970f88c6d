"""The pact matcher: what it accepts, and that a provider breaking a pact is reported clearly."""

from typing import Any

from msashop.chassis.bus.memory import InMemoryBus
from tests.contract.matching import example, match
from tests.contract.pacts import by_id, verify_rpc

CAPTURED = by_id("charge-ok").response["payload"]
COMMAND = {"order_id": "o-7", "amount": "44.48"}


def test_a_reply_with_every_field_the_consumer_reads_matches_and_may_carry_more() -> None:
    reply = {"order_id": "o-7", "payment_id": "pay-9", "amount": "10.00", "provider_ref": "x"}
    assert match(CAPTURED, reply, request=COMMAND) == []


def test_a_reply_missing_a_field_the_consumer_reads_is_reported_by_path() -> None:
    reply = {"order_id": "o-7", "amount": "10.00"}  # a provider dropped payment_id
    assert match(CAPTURED, reply, request=COMMAND) == ["$.payment_id: missing (the consumer reads it)"]


def test_wrong_types_values_and_correlation_are_each_reported() -> None:
    reply = {"order_id": "o-8", "payment_id": 9, "amount": "ten"}
    assert match(CAPTURED, reply, request=COMMAND) == [
        "$.order_id: expected the request's order_id 'o-7', got 'o-8'",
        "$.payment_id: expected a string like 'pay-1', got 9",
        "$.amount: expected a decimal (number or numeric string), got 'ten'",
    ]


def test_lists_optional_fields_exact_values_and_provider_state() -> None:
    spec: dict[str, Any] = {
        "items": {"$eachLike": {"id": {"$equals": "${known_id}"}, "price": {"$decimal": 1.5}}},
        "note": {"$optional": "n"},
        "days": 3,
    }
    state = {"known_id": "p-1"}
    assert match(spec, {"items": [{"id": "p-1", "price": 2}], "days": 1}, state=state) == []
    assert match(spec, {"items": [{"id": "p-2", "price": True}], "note": 5, "days": 1.5}, state=state) == [
        "$.items[0].id: expected 'p-1', got 'p-2'",
        "$.items[0].price: expected a decimal (number or numeric string), got True",
        "$.note: expected a string like 'n', got 5",
        "$.days: expected an integer like 3, got 1.5",
    ]
    assert match(spec, {"items": [], "days": 1}, state=state) == [
        "$.items: expected a non-empty list, got []"
    ]


def test_the_example_is_the_smallest_value_the_spec_allows() -> None:
    spec = by_id("reserve-short").response["payload"]
    assert example(spec, request={"order_id": "o-3"}) == {"order_id": "o-3", "reason": "out_of_stock"}
    assert example(by_id("products-batch").request["query"], state={"known_id": "p-1"}) == {
        "ids": "p-1,no-such-product"
    }


async def test_a_provider_that_drops_a_field_fails_verification_with_the_reason() -> None:
    bus = InMemoryBus()

    async def forgetful_shipping(body: dict[str, Any]) -> dict[str, Any]:
        return {"cost": "4.50", "currency": body["currency"], "service_level": "standard"}

    await bus.respond("shipping.calculate", forgetful_shipping)
    problems = await verify_rpc(bus, by_id("quote"), {})
    assert problems == ["$.estimated_days: missing (the consumer reads it)"]
