"""The service client without the network: an open circuit answers at once, the knobs come from
settings, and a service's /health shows its circuits."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from msashop.chassis.circuit_breaker import CircuitOpen, State
from msashop.chassis.client_policy import ClientPolicy
from msashop.chassis.service import Service
from msashop.chassis.service_client import ServiceClient
from msashop.chassis.settings import ServiceSettings
from tests.unit.chassis.fakes_resilience import FakeClock, FakeDiscovery


def open_circuit(client: ServiceClient, service: str) -> None:
    breaker = client.breaker(service)
    for _ in range(client.policy.breaker_min_calls):
        breaker.acquire().failure()
    assert breaker.state is State.OPEN


async def test_an_open_circuit_fails_every_call_fast_without_the_network() -> None:
    # "unreachable.invalid" would cost a DNS lookup and a timeout if the client tried it.
    discovery = FakeDiscovery(fastprobe=["unreachable.invalid"])
    client = ServiceClient(discovery, caller="order", clock=FakeClock())
    open_circuit(client, "fastprobe")
    durations = []
    for method in ("GET", "PUT", "POST") * 50:
        started = time.perf_counter()
        with pytest.raises(CircuitOpen) as raised:
            await client.request("fastprobe", method, "/products/1")
        durations.append(time.perf_counter() - started)

    # Per call, as the median and the mean: one scheduling pause on a busy machine is not the breaker's.
    per_call = (statistics.median(durations), statistics.fmean(durations))
    assert max(per_call) < 0.005, per_call
    assert raised.value.status_code == 503 and raised.value.code == "circuit_open"
    assert client._session is None  # nothing was sent
    assert client.circuits() == {"fastprobe": "OPEN"}
    assert REGISTRY.get_sample_value("circuit_breaker_state", {"upstream": "fastprobe"}) == 1
    rejected = {"upstream": "fastprobe", "reason": "circuit_open"}
    assert REGISTRY.get_sample_value("upstream_calls_rejected_total", rejected) == 150


async def test_the_circuit_half_opens_after_the_reset_timeout_and_the_gauge_follows() -> None:
    clock = FakeClock()
    client = ServiceClient(FakeDiscovery(gaugeprobe=["a"]), clock=clock)
    open_circuit(client, "gaugeprobe")
    clock.advance(client.policy.breaker_reset_seconds)

    assert client.circuits() == {"gaugeprobe": "HALF_OPEN"}
    assert REGISTRY.get_sample_value("circuit_breaker_state", {"upstream": "gaugeprobe"}) == 2


def test_the_knobs_come_from_the_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_KNOBPROBE_BULKHEAD_MAX_CONCURRENT_CALLS", "7")
    settings = ServiceSettings.load("knobprobe", call_max_attempts=2, breaker_min_calls=4)
    policy = ClientPolicy.from_settings(settings)

    assert policy.bulkhead_max_concurrent == 7
    assert policy.max_attempts == 2 and policy.breaker_min_calls == 4
    assert policy == ClientPolicy(bulkhead_max_concurrent=7, max_attempts=2, breaker_min_calls=4)


async def test_health_shows_the_circuit_of_every_upstream_called(tmp_path: Path) -> None:
    service = Service(ServiceSettings.load("healthprobe", data_dir=tmp_path), uses_bus=False)
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            before = (await http.get("/health")).json()
            service.client.breaker("user")
            open_circuit(service.client, "product")
            after = await http.get("/health")

    assert before == {"status": "ok", "service": "healthprobe", "version": "v1", "circuits": {}}
    assert after.status_code == 200
    assert after.json()["circuits"] == {"product": "OPEN", "user": "CLOSED"}
