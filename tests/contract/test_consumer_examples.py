"""Consumer side, part 2: the order service works with what the pacts promise and nothing more.

The real order service runs with every neighbour played from the pacts (as Pact's mock provider
does): the product and user services and the shipping quote answer the minimal example of their
interaction, and each saga command is answered with its interaction's minimal reply. Extra
fields a provider sends today are absent here, so an order reading one would fail. Every request
the order makes is also checked against the pact's request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.envelope import Envelope
from msashop.services.order.composition import compose
from msashop.services.order.config import OrderSettings
from msashop.services.order.main import create_service
from tests.contract.matching import example, match
from tests.contract.pacts import CONSUMER, by_id
from tests.integration.order.conftest import Shop, order_body
from tests.service_harness import running

HTTP = {"/products/batch": "products-batch", "/users/batch": "users-batch"}
# The saga step each command belongs to: a reply the order acted on has finished it.
STEP_OF = {
    "inventory.reserve": "RESERVE_INVENTORY",
    "payment.charge": "PROCESS_PAYMENT",
    "inventory.commit": "COMMIT_INVENTORY",
    "notification.send": "SEND_NOTIFICATION",
    "payment.refund": "REFUND_PAYMENT",
    "inventory.release": "RELEASE_INVENTORY",
}


@dataclass
class Stubs:
    """The order's neighbours, answering from the pacts; `problems` notes every request of the
    order's that the pact's request does not describe."""

    url: str = ""
    problems: list[str] = field(default_factory=list)

    async def http(self, request: web.Request) -> web.Response:
        interaction = by_id(HTTP[request.path])
        pacted = {"query": interaction.request["query"], "headers": interaction.request.get("headers", {})}
        sent = {
            "query": dict(request.query),
            "headers": {k: request.headers.get(k) for k in pacted["headers"]},
        }
        self.problems += match(pacted, sent, path=request.path)
        first_id = request.query["ids"].split(",")[0]  # the example answers for the first id asked
        body = example(interaction.response["body"], state={"known_id": first_id, "user_id": first_id})
        return web.json_response(body, status=interaction.response["status"])

    async def shipping(self, body: dict[str, Any]) -> dict[str, Any]:
        interaction = by_id("quote")
        self.problems += match(interaction.request["payload"], body, path="shipping.calculate")
        answer: dict[str, Any] = example(interaction.response["payload"], request=body)
        return answer


@pytest.fixture
async def stubs() -> AsyncIterator[Stubs]:
    stubs = Stubs()
    app = web.Application()
    for path in HTTP:
        app.router.add_get(path, stubs.http)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    stubs.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield stubs
    await runner.cleanup()


@pytest.fixture
async def shop(tmp_path: Path, stubs: Stubs) -> AsyncIterator[Shop]:
    (tmp_path / "ports.json").write_text(json.dumps({"product": stubs.url, "user": stubs.url}))
    settings = OrderSettings.load("order", data_dir=tmp_path, saga_sweep_seconds=3600)
    bus = InMemoryBus()
    await bus.respond("shipping.calculate", stubs.shipping)
    async with running(create_service(settings, bus=bus), harness=Shop) as harness:
        yield harness


async def answer(shop: Shop, order_id: str, interaction_id: str) -> None:
    """Reply to the order's latest command of the interaction with the pact's minimal reply."""
    interaction = by_id(interaction_id)
    subject = interaction.request["subject"]
    sent = [e for e in shop.bus.published if e.source == CONSUMER and e.type == subject and e.key == order_id]
    assert sent, f"the order sent no {subject} for {interaction}"
    command = sent[-1].data
    assert match(interaction.request["payload"], command, path=subject) == []
    reply = example(interaction.response["payload"], request=command)
    envelope = Envelope(
        source=interaction.provider, type=interaction.response["subject"], key=order_id, data=reply
    )
    await shop.bus.publish(envelope)
    await shop.settle()  # fails if the order's handler refused the reply
    step = [s for s in (await shop.saga(order_id))["steps"] if s["name"] == STEP_OF[subject]][-1]
    assert step["status"] != "RUNNING", f"the order did not act on {interaction}'s reply {reply}"


CANCEL = "the buyer cancels"
CONFIRMED = ["reserve-ok", "charge-ok", "commit", "send-ok"]
SCENARIOS = {
    "confirmed": (CONFIRMED, "CONFIRMED", "COMPLETED"),
    "out of stock": (["reserve-short"], "CANCELLED", "FAILED"),
    "card declined": (["reserve-ok", "charge-declined", "release"], "CANCELLED", "FAILED"),
    "payment failed": (["reserve-ok", "charge-failed", "release"], "CANCELLED", "FAILED"),
    "refunded": ([*CONFIRMED, CANCEL, "refund-ok", "release"], "CANCELLED", "FAILED"),
    "nothing to refund": (["reserve-ok", CANCEL, "refund-nothing", "release"], "CANCELLED", "FAILED"),
    "refund refused": ([*CONFIRMED, CANCEL, "refund-refused"], "CANCELLED", "COMPENSATION_FAILED"),
    "mail server down": (["reserve-ok", "charge-ok", "commit", "send-failed"], "CONFIRMED", "RUNNING"),
}


@pytest.mark.parametrize(("steps", "order_status", "saga_status"), SCENARIOS.values(), ids=SCENARIOS)
async def test_the_saga_runs_on_the_pacts_minimal_replies(
    shop: Shop, stubs: Stubs, steps: list[str], order_status: str, saga_status: str
) -> None:
    placed = await shop.place_ok(order_body(("p-1", 2)))  # priced from the pact examples
    assert (placed["total"], placed["shipping_cost"]) == (44.48, 4.5)
    for step in steps:
        if step == CANCEL:
            cancelled = await shop.client.post(
                f"/orders/{placed['id']}/cancel", headers=shop.auth_headers("u1")
            )
            assert cancelled.status_code == 202, cancelled.text
            await shop.settle()
        else:
            await answer(shop, placed["id"], step)
    assert (await shop.order(placed["id"]))["status"] == order_status
    assert (await shop.saga(placed["id"]))["status"] == saga_status
    assert stubs.problems == []


async def test_composition_reads_the_pacts_minimal_user_and_products(shop: Shop, stubs: Stubs) -> None:
    placed = await shop.place_ok(order_body(("p-1", 2)))
    headers = shop.auth_headers("u1")
    response = await shop.client.get(f"/orders/{placed['id']}", params={"expand": "user"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["user"] == {"id": "u1", "name": "Ada", "email": "ada@example.com"}
    assert response.json()["degraded"] is False
    # The products through compose() itself: the API's line model leaves `product` out today.
    composed = await compose(placed, frozenset({"products"}), shop.service.client, headers["Authorization"])
    assert composed["degraded"] is False
    assert composed["items"][0]["product"] == {
        "id": "p-1",
        "name": "Mouse",
        "price": 19.99,
        "currency": "USD",
    }
    assert stubs.problems == []  # the order forwarded the caller's token, asked in one batch each
