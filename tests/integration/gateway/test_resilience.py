"""Outlier ejection, connection limits and fault injection through the real gateway."""

import asyncio
import time

import httpx
from prometheus_client import REGISTRY

from tests.integration.gateway.conftest import Gateway, Upstream, dead


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_instance_answering_500_is_ejected_then_returns(gateway: Gateway) -> None:
    gateway.rules('[trafficPolicy.outlierDetection]\nbaseEjectionTime = "500ms"\n')
    broken, a, b = Upstream("p-1", failing=True), Upstream("p-2"), Upstream("p-3")
    await gateway.add(broken, a, b)
    ejections = _sample("gateway_outlier_ejections_total", service="product")
    first = await gateway.spread("/api/products", 30, batch=1)
    # Its five 500s reach the clients unchanged; then it gets nothing more.
    assert first["500"] == 5 and first["p-2"] + first["p-3"] == 25
    assert len(broken.paths) == 5
    assert _sample("gateway_outlier_ejections_total", service="product") == ejections + 1
    broken.failing = False
    await asyncio.sleep(0.5)
    assert set(await gateway.spread("/api/products", 9, batch=1)) == {"p-1", "p-2", "p-3"}


async def test_a_refused_instance_costs_clients_nothing_and_is_ejected(gateway: Gateway) -> None:
    gone = dead("p-1")
    await gateway.add(gone, Upstream("p-2"), Upstream("p-3"))
    seen = await gateway.spread("/api/products", 30, batch=1)
    assert seen["p-2"] + seen["p-3"] == 30  # refused connections went to another instance
    assert gateway.mesh.upstream("product").outliers.is_ejected("p-1")


async def test_beyond_connections_and_pending_requests_the_answer_is_a_fast_503(gateway: Gateway) -> None:
    gateway.rules(
        """
        [services.product.trafficPolicy.connectionPool]
        tcp = { maxConnections = 2 }
        http = { http1MaxPendingRequests = 1 }
        """
    )
    gate = asyncio.Event()
    await gateway.add(Upstream("p-1", gate=gate), Upstream("p-2", gate=gate))
    rejections = _sample("gateway_limit_rejections_total", service="product")

    async def timed() -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        answer = await gateway.client.get("/api/products")
        return answer, time.perf_counter() - started

    calls = [asyncio.create_task(timed()) for _ in range(10)]
    done, _ = await asyncio.wait(calls, timeout=0.5)  # the service hangs all that time
    refused = [task.result() for task in done]
    # 2 in flight, 1 waiting; the other 7 were answered at once, while the service still hangs.
    assert len(refused) == 7
    for answer, elapsed in refused:
        assert answer.status_code == 503 and elapsed < 0.5
        assert answer.json()["error"]["code"] == "upstream_overloaded"
        assert answer.json()["error"]["details"] == {"service": "product"}
    gate.set()
    served = await asyncio.gather(*(c for c in calls if c not in done))
    assert [answer.status_code for answer, _ in served] == [200, 200, 200]
    assert _sample("gateway_limit_rejections_total", service="product") == rejections + 7


async def test_an_abort_fault_answers_for_the_service_on_its_route_only(gateway: Gateway) -> None:
    upstream = Upstream("o-1", service="order")
    await gateway.add(upstream)
    gateway.rules(
        """
        [[services.order.http]]
        match = [{ uri = { prefix = "/api/orders" }, method = { exact = "POST" } }]
        fault.abort = { httpStatus = 503 }
        """
    )
    answer = await gateway.client.post("/api/orders", json={})
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "code": "fault_injected",
        "message": "fault injected by the gateway's traffic rules",
        "details": {"service": "order"},
    }
    assert upstream.paths == []
    assert (await gateway.client.get("/api/orders")).status_code == 200


async def test_about_half_the_requests_fail_at_fifty_percent(gateway: Gateway) -> None:
    await gateway.add(Upstream("o-1", service="order"))
    gateway.rules(
        "[[services.order.http]]\nfault.abort = { httpStatus = 500, percentage = { value = 50 } }\n"
    )
    seen = await gateway.spread("/api/orders", 400)
    assert 0.40 <= seen["500"] / 400 <= 0.60
    assert seen["o-1"] + seen["500"] == 400


async def test_a_delay_fault_holds_the_request_then_forwards_it(gateway: Gateway) -> None:
    await gateway.add(Upstream("o-1", service="order"))
    gateway.rules('[[services.order.http]]\nfault.delay = { fixedDelay = "300ms" }\n')
    started = time.perf_counter()
    answers = await asyncio.gather(*(gateway.client.get("/api/orders") for _ in range(5)))
    elapsed = time.perf_counter() - started
    assert [a.json()["instance"] for a in answers] == ["o-1"] * 5
    assert 0.3 <= elapsed < 1.0  # held concurrently, not one after another


async def test_a_delay_at_fifty_percent_holds_about_half(gateway: Gateway) -> None:
    await gateway.add(Upstream("o-1", service="order"))
    gateway.rules(
        '[[services.order.http]]\nfault.delay = { fixedDelay = "40ms", percentage = { value = 50 } }\n'
    )

    async def timed() -> float:
        started = time.perf_counter()
        await gateway.client.get("/api/orders")
        return time.perf_counter() - started

    durations = [await timed() for _ in range(40)]  # one at a time: only the delay makes one slow
    held = sum(d >= 0.04 for d in durations)
    assert 12 <= held <= 28
