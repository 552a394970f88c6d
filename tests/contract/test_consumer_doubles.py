"""Consumer side, part 1: the order service's tests run against doubles; those doubles must
answer as the pacts say, or the order's tests pass against a fantasy.

- the fake product, user and shipping services of tests/integration/order are verified exactly
  as the real providers are (test_provider_*.py);
- every saga test in tests/integration/order/test_saga.py is run again here, and every reply it
  delivers must match a pact for its subject, every command the order sends a pact's request;
- every subject the order service consumes has a pact, and every pact reply is consumed.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.bus.port import DEFAULT_MAX_ATTEMPTS, MessageHandler
from msashop.contracts.envelope import Envelope
from msashop.services.order.config import OrderSettings
from msashop.services.order.main import create_service
from tests.contract.matching import match
from tests.contract.pacts import (
    CONSUMER,
    Interaction,
    by_id,
    every_interaction,
    reply_problems,
    verify_http,
    verify_rpc,
)
from tests.integration.order import test_saga
from tests.integration.order.conftest import FakeProducts, FakeShipping, Shop
from tests.integration.order.test_composition import CATALOG, USERS, FakeBatch, serve
from tests.service_harness import running

SagaTest = Callable[[Shop], Awaitable[None]]
SAGA_TESTS: list[SagaTest] = [
    test
    for name, test in inspect.getmembers(test_saga, inspect.iscoroutinefunction)
    if name.startswith("test_") and list(inspect.signature(test).parameters) == ["shop"]
]
assert SAGA_TESTS, "no saga test of the order service takes only `shop`: nothing to check here"


async def test_the_fake_product_service_honours_the_product_pact(products: FakeProducts) -> None:
    async with httpx.AsyncClient(base_url=products.url) as client:
        assert await verify_http(client, by_id("products-batch"), {"known_id": "p-mouse"}) == []


@pytest.mark.parametrize(
    ("records", "path", "interaction", "state"),
    [
        (USERS, "/users/batch", "users-batch", {"user_id": "u1", "token": "t"}),
        (CATALOG, "/products/batch", "products-batch", {"known_id": "p1"}),
    ],
)
async def test_the_composition_fakes_honour_the_pacts(
    records: dict[str, dict[str, Any]], path: str, interaction: str, state: dict[str, str]
) -> None:
    fake = FakeBatch(records)
    runner = await serve(fake, path)
    try:
        async with httpx.AsyncClient(base_url=fake.url) as client:
            assert await verify_http(client, by_id(interaction), state) == []
    finally:
        await runner.cleanup()


async def test_the_fake_shipping_service_honours_the_shipping_pact() -> None:
    bus = InMemoryBus()
    await bus.respond("shipping.calculate", FakeShipping().calculate)
    assert await verify_rpc(bus, by_id("quote"), {}) == []


@pytest.mark.parametrize("saga_test", SAGA_TESTS, ids=lambda test: test.__name__)
async def test_the_saga_tests_speak_as_the_pacts_say(shop: Shop, saga_test: SagaTest) -> None:
    await saga_test(shop)
    commands = [e for e in shop.bus.published if e.source == CONSUMER]
    problems = [p for e in commands for p in _command_problems(e)]
    problems += [p for e in shop.bus.published if e.source != CONSUMER for p in _reply_problems(e, commands)]
    assert problems == []


def _command_problems(command: Envelope) -> list[str]:
    """What the order publishes is its own event (`order.*`) or a command some pact describes."""
    if command.type.startswith(f"{CONSUMER}."):
        return []
    candidates = [i for i in every_interaction() if i.request.get("subject") == command.type]
    if not candidates:
        return [f"the order sends {command.type} but no pact describes it"]
    return _best(candidates, lambda i: _sent_as_pacted(i, command))


def _sent_as_pacted(interaction: Interaction, command: Envelope) -> list[str]:
    problems = match(interaction.request["payload"], command.data, path=command.type)
    if interaction.keyed_by and command.key != command.data.get(interaction.keyed_by):
        problems.append(f"{command.type}: keyed by {command.key!r}, not by its {interaction.keyed_by}")
    return problems


def _reply_problems(reply: Envelope, commands: list[Envelope]) -> list[str]:
    candidates = [i for i in every_interaction() if i.response.get("subject") == reply.type]
    if not candidates:
        return [f"the order's tests deliver {reply.type} but no pact describes it"]

    def against(interaction: Interaction) -> list[str]:
        asked = [c.data for c in commands if c.type == interaction.request["subject"] and c.key == reply.key]
        request = asked[-1] if asked else None  # a reply for an order never asked: shape only
        return [f"{reply.type} {p}" for p in reply_problems(interaction, reply, request)]

    return _best(candidates, against)


def _best(candidates: list[Interaction], problems_of: Callable[[Interaction], list[str]]) -> list[str]:
    """No problems if any candidate interaction matches; else the first candidate's."""
    found = [problems_of(i) for i in candidates]
    return [] if [] in found else [f"{candidates[0]}: {p}" for p in found[0]]


class SubscriptionsBus(InMemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.subjects: set[str] = set()

    async def subscribe(
        self, subject: str, group: str, handler: MessageHandler, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        self.subjects.add(subject)
        await super().subscribe(subject, group, handler, max_attempts=max_attempts)


@pytest.fixture
async def consumed(settings: OrderSettings) -> AsyncIterator[set[str]]:
    bus = SubscriptionsBus()
    async with running(create_service(settings, bus=bus)):
        yield bus.subjects


async def test_every_reply_the_order_consumes_has_a_pact_and_no_pact_reply_goes_unread(
    consumed: set[str],
) -> None:
    pacted = {i.response["subject"] for i in every_interaction() if "subject" in i.response}
    assert consumed == pacted
