"""The service client against real local HTTP servers (several instances of a fake upstream):
round robin, a dead or failing instance skipped and the GET retried elsewhere, POST never
retried, Retry-After, the circuit breaker opening and failing fast, the bulkhead."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from msashop.chassis.bulkhead import BulkheadFull
from msashop.chassis.circuit_breaker import CircuitOpen
from msashop.chassis.client_policy import ClientPolicy
from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.errors import NotFound, UpstreamUnavailable
from msashop.chassis.service_client import ServiceClient
from tests.conftest import free_port, wait_until
from tests.unit.chassis.fakes_resilience import FakeClock


@dataclass
class Upstream:
    """One instance of a fake product service. `statuses` are answered in order (then 200);
    `status` is answered when that list is empty; `delay` or `gate` hold each answer."""

    name: str
    url: str = ""
    status: int = 200
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    delay: float = 0.0
    gate: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)  # methods, in order

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(request.method)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else self.status
        if status >= 400:
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            body = {"error": {"code": "boom", "message": f"{self.name} says {status}"}}
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"served_by": self.name})


async def serve(upstream: Upstream) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/items", upstream.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


Make = Callable[..., Awaitable[ServiceClient]]


@pytest.fixture
async def upstreams() -> AsyncIterator[list[Upstream]]:
    fakes = [Upstream(f"product-{n}") for n in (1, 2, 3)]
    runners = [await serve(fake) for fake in fakes]
    yield fakes
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def make_client() -> AsyncIterator[Make]:
    clients: list[ServiceClient] = []

    async def make(urls: list[str], *, timeout: float = 2.0, **kwargs: Any) -> ServiceClient:
        discovery = StaticDiscovery({"product": list(urls)})
        client = ServiceClient(discovery, timeout=timeout, caller="order", **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def no_sleep(_: float) -> None:
    return None


def served(fakes: list[Upstream]) -> list[int]:
    return [len(fake.calls) for fake in fakes]


async def test_round_robin_spreads_calls_over_every_instance(
    upstreams: list[Upstream], make_client: Make
) -> None:
    client = await make_client([u.url for u in upstreams])

    answers = [await client.get("product", "/items") for _ in range(30)]

    assert served(upstreams) == [10, 10, 10]
    assert {a["served_by"] for a in answers} == {"product-1", "product-2", "product-3"}


async def test_a_dead_instance_is_skipped_and_the_get_retried_on_another_succeeds(
    upstreams: list[Upstream], make_client: Make
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = await make_client([upstreams[0].url, dead, upstreams[1].url], sleep=no_sleep)

    answers = [await client.get("product", "/items") for _ in range(30)]

    assert all(a["served_by"] in {"product-1", "product-2"} for a in answers)
    assert sum(served(upstreams[:2])) == 30
    assert client.balancer.ejected("product") == ["product-2"]  # the dead one's id
    assert client.circuits() == {"product": "CLOSED"}  # 1 failure in 31 attempts


async def test_an_instance_answering_503_is_tried_once_then_skipped(
    upstreams: list[Upstream], make_client: Make
) -> None:
    upstreams[1].status = 503
    client = await make_client([u.url for u in upstreams], sleep=no_sleep)

    answers = [await client.get("product", "/items") for _ in range(30)]

    assert upstreams[1].calls == ["GET"]
    assert {a["served_by"] for a in answers} == {"product-1", "product-3"}


async def test_a_timeout_is_retried_on_another_instance(upstreams: list[Upstream], make_client: Make) -> None:
    upstreams[0].delay = 1.0
    client = await make_client([u.url for u in upstreams[:2]], timeout=0.2, sleep=no_sleep)

    started = time.perf_counter()
    answer = await client.get("product", "/items")

    assert answer == {"served_by": "product-2"}
    assert time.perf_counter() - started < 0.8


@pytest.mark.parametrize("failure", [503, "dead"])
async def test_a_post_is_never_retried(upstreams: list[Upstream], make_client: Make, failure: object) -> None:
    if failure == "dead":
        client = await make_client([f"http://127.0.0.1:{free_port()}", upstreams[1].url], sleep=no_sleep)
    else:
        upstreams[0].status = upstreams[1].status = 503
        client = await make_client([u.url for u in upstreams[:2]], sleep=no_sleep)

    with pytest.raises(UpstreamUnavailable):
        await client.post("product", "/items", json={"name": "x"})

    assert sum(served(upstreams)) == (0 if failure == "dead" else 1)


async def test_a_get_is_attempted_at_most_max_attempts_times(
    upstreams: list[Upstream], make_client: Make
) -> None:
    for upstream in upstreams:
        upstream.status = 503
    policy = ClientPolicy(max_attempts=3)
    client = await make_client([u.url for u in upstreams], sleep=no_sleep, policy=policy)

    with pytest.raises(UpstreamUnavailable):
        await client.get("product", "/items")

    assert served(upstreams) == [1, 1, 1]  # each attempt on another instance


async def test_retry_after_is_honoured_and_capped(upstreams: list[Upstream], make_client: Make) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    upstream = upstreams[0]
    upstream.statuses, upstream.retry_after = [429, 503], "120"
    client = await make_client([upstream.url], sleep=sleep, policy=ClientPolicy(retry_max_wait=10.0))

    assert await client.get("product", "/items") == {"served_by": "product-1"}
    assert slept == [10.0, 10.0]
    assert upstream.calls == ["GET"] * 3


async def test_the_breaker_opens_against_a_failing_upstream_fails_fast_and_recovers(
    upstreams: list[Upstream], make_client: Make
) -> None:
    clock = FakeClock()
    upstream = upstreams[0]
    upstream.status = 500  # not retried, but a failure for the breaker
    client = await make_client([upstream.url], clock=clock, sleep=no_sleep)

    for _ in range(10):  # the minimum number of calls, all failed
        with pytest.raises(UpstreamUnavailable):
            await client.get("product", "/items")
    assert client.circuits() == {"product": "OPEN"}

    durations = []
    for _ in range(50):
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):
            await client.get("product", "/items")
        durations.append(time.perf_counter() - started)
    # Per call, as the median and the mean: one scheduling pause on a busy machine is not the breaker's.
    per_call = (statistics.median(durations), statistics.fmean(durations))
    assert max(per_call) < 0.005, per_call
    assert len(upstream.calls) == 10  # nothing reached it while open

    upstream.status = 200
    clock.advance(30)
    assert client.circuits() == {"product": "HALF_OPEN"}
    for _ in range(3):
        await client.get("product", "/items")
    assert client.circuits() == {"product": "CLOSED"}


async def test_4xx_answers_do_not_open_the_breaker(upstreams: list[Upstream], make_client: Make) -> None:
    upstreams[0].status = 404
    client = await make_client([upstreams[0].url])

    for _ in range(20):
        with pytest.raises(NotFound, match="product-1 says 404"):
            await client.get("product", "/items")

    assert client.circuits() == {"product": "CLOSED"}
    assert len(upstreams[0].calls) == 20  # and a 404 is not retried


async def test_the_bulkhead_rejects_calls_beyond_its_limit_at_once(
    upstreams: list[Upstream], make_client: Make
) -> None:
    gate = asyncio.Event()
    for upstream in upstreams:
        upstream.gate = gate
    client = await make_client([u.url for u in upstreams], policy=ClientPolicy(bulkhead_max_concurrent=2))
    held = [asyncio.create_task(client.get("product", "/items")) for _ in range(2)]
    await wait_until(lambda: sum(served(upstreams)) == 2)

    started = time.perf_counter()
    with pytest.raises(BulkheadFull) as raised:
        await client.get("product", "/items")
    assert time.perf_counter() - started < 0.05  # refused, not queued behind the gate
    assert raised.value.status_code == 503

    gate.set()
    assert [a["served_by"] for a in await asyncio.gather(*held)]
    assert sum(served(upstreams)) == 2
    assert await client.get("product", "/items")  # a slot is free again
