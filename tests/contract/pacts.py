"""The order service's pacts (pacts/order-<provider>.json) and how to check one interaction
against whatever answers it: a real provider in a verification test, a test double in a consumer
test. There is no broker: the pact files live here, next to the tests that use them both ways.

An interaction is Pact-like: `providerState` (set up by the provider's test), `request` and the
`response` the order service relies on. Three kinds, by the request's shape:
- HTTP: `method`, `path`, `query`, `headers` -> `status`, `body`;
- a bus command: `subject`, `payload` -> a reply `subject`, `payload`; both envelopes are keyed
  by the payload field `keyedBy` (the order id), so one order's messages stay in order;
- a bus request/reply (RPC): `subject`, `payload` -> `payload`.
Specs are matching.py's: the fields the order reads, matched by type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx

from msashop.chassis.bus.port import EventBus, RpcError
from msashop.contracts.envelope import Envelope
from tests.contract.matching import Params, example, match
from tests.service_harness import ServiceHarness

PACTS = Path(__file__).parent / "pacts"
CONSUMER = "order"
Handler = TypeVar("Handler")


@dataclass(frozen=True)
class Interaction:
    provider: str
    id: str
    description: str
    provider_state: str
    request: dict[str, Any]
    response: dict[str, Any]
    keyed_by: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.id}"


@cache
def interactions(provider: str) -> tuple[Interaction, ...]:
    pact = json.loads((PACTS / f"{CONSUMER}-{provider}.json").read_text())
    assert (pact["consumer"], pact["provider"]) == (CONSUMER, provider)
    return tuple(
        Interaction(
            provider=provider,
            id=i["id"],
            description=i["description"],
            provider_state=i["providerState"],
            request=i["request"],
            response=i["response"],
            keyed_by=i.get("keyedBy"),
        )
        for i in pact["interactions"]
    )


def providers() -> list[str]:
    return sorted(p.stem.removeprefix(f"{CONSUMER}-") for p in PACTS.glob(f"{CONSUMER}-*.json"))


def every_interaction() -> list[Interaction]:
    return [i for provider in providers() for i in interactions(provider)]


def by_id(interaction_id: str) -> Interaction:
    """An interaction by its id (unique across the order's pacts)."""
    found = [i for i in every_interaction() if i.id == interaction_id]
    assert len(found) == 1, f"{len(found)} interactions have the id {interaction_id!r}"
    return found[0]


def given(states: dict[str, Handler], interaction: Interaction) -> Handler:
    """The provider test's handler for the interaction's provider state; a clear failure if none."""
    if interaction.provider_state not in states:
        raise AssertionError(
            f"{interaction}: no handler for the provider state {interaction.provider_state!r}; "
            f"the {interaction.provider} tests know {sorted(states)}"
        )
    return states[interaction.provider_state]


async def verify_http(client: httpx.AsyncClient, interaction: Interaction, state: Params) -> list[str]:
    """Send the pact's request and check the response against it."""
    request, expected = interaction.request, interaction.response
    response = await client.request(
        request["method"],
        request["path"],
        params={k: example(v, state=state) for k, v in request.get("query", {}).items()},
        headers={k: example(v, state=state) for k, v in request.get("headers", {}).items()},
    )
    if response.status_code != expected["status"]:
        return [f"status: expected {expected['status']}, got {response.status_code}: {response.text[:300]}"]
    return match(expected["body"], response.json(), state=state)


async def verify_command(provider: ServiceHarness, interaction: Interaction, state: Params) -> list[str]:
    """Publish the pact's command on the provider's bus as the order would, then check the reply
    the provider published (subject, key, payload)."""
    assert interaction.keyed_by and provider.service.relay is not None
    payload = example(interaction.request["payload"], state=state)
    key = str(payload[interaction.keyed_by])
    bus, refused = provider.bus, len(provider.bus.failures)
    start = len(bus.published)
    await bus.publish(Envelope(source=CONSUMER, type=interaction.request["subject"], key=key, data=payload))
    if len(bus.failures) > refused:
        return [f"the provider refused the command: {bus.failures[-1][1]!r}"]
    await provider.service.relay.publish_pending()
    published = bus.published[start + 1 :]
    wanted = interaction.response["subject"]
    replies = [e for e in published if e.type == wanted]
    if not replies:
        seen = [(e.type, e.data) for e in published]
        return [f"no {wanted} reply; the provider published {seen or 'nothing'}"]
    return [p for reply in replies for p in reply_problems(interaction, reply, payload, state)]


def reply_problems(
    interaction: Interaction, reply: Envelope, request: dict[str, Any] | None, state: Params | None = None
) -> list[str]:
    """How a reply envelope falls short of the interaction (its request, if known, for correlation)."""
    problems = match(interaction.response["payload"], reply.data, request=request, state=state)
    if request is not None and interaction.keyed_by:
        key = str(request[interaction.keyed_by])
        if reply.key != key:
            problems.append(
                f"envelope key: expected the request's {interaction.keyed_by} {key!r}, got {reply.key!r}"
            )
    return problems


async def verify_rpc(bus: EventBus, interaction: Interaction, state: Params) -> list[str]:
    """Ask the pact's question over the bus and check the answer."""
    payload = example(interaction.request["payload"], state=state)
    try:
        answer = await bus.request(interaction.request["subject"], payload, timeout=2)
    except RpcError as exc:
        return [f"the provider answered an error: {exc}"]
    return match(interaction.response["payload"], answer, request=payload, state=state)
