"""The gateway's rate limits end to end in one process: the real app in front of real aiohttp
upstreams, counts in memory (the shared store across processes: tests/security/
test_rate_limits_workers.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from prometheus_client import REGISTRY

from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service
from tests.integration.gateway.conftest import TaggedDiscovery, Upstream


@asynccontextmanager
async def limited_gateway(
    tmp_path: Path, *upstreams: Upstream, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings.setdefault("rate_limits", True)  # whatever MSASHOP_RATE_LIMITS the test run has
    service = create_service(GatewaySettings.load("gateway", data_dir=tmp_path, **settings))
    runners: list[web.AppRunner] = [await u.start() for u in upstreams]
    try:
        async with service.app.router.lifespan_context(service.app):
            service.discovery = TaggedDiscovery(list(upstreams))  # type: ignore[assignment]
            transport = httpx.ASGITransport(app=service.app, client=("203.0.113.5", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=10) as client:
                yield client
    finally:
        for runner in runners:
            await runner.cleanup()


def _limit_headers(answer: httpx.Response) -> tuple[str, str, str]:
    return (
        answer.headers["x-ratelimit-limit"],
        answer.headers["x-ratelimit-remaining"],
        answer.headers["x-ratelimit-reset"],
    )


async def test_answers_carry_the_headers_and_the_request_over_the_limit_is_refused(tmp_path: Path) -> None:
    product = Upstream("p1", "product")
    async with limited_gateway(tmp_path, product, rate_limit_anonymous="3/hour") as client:
        answers = [await client.get("/api/products") for _ in range(3)]
        refused = await client.get("/api/products")

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [_limit_headers(a)[:2] for a in answers] == [("3", "2"), ("3", "1"), ("3", "0")]
    assert all(int(_limit_headers(a)[2]) > time.time() for a in answers)  # Unix time, ahead
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["details"]["limit"] == "tier"
    assert int(refused.headers["retry-after"]) >= 1
    assert _limit_headers(refused)[:2] == ("3", "0")
    assert len(product.paths) == 3  # the refused one never reached the service


async def test_health_metrics_and_static_files_are_never_limited(tmp_path: Path) -> None:
    async with limited_gateway(tmp_path, Upstream("p1", "product"), rate_limit_anonymous="1/hour") as client:
        await client.get("/api/products")
        assert (await client.get("/api/products")).status_code == 429
        for path in ("/health", "/metrics", "/static/app.js", "/health", "/metrics"):
            answer = await client.get(path)
            assert answer.status_code != 429, path
            assert "x-ratelimit-limit" not in answer.headers, path


async def test_login_and_register_have_their_own_stricter_limit(tmp_path: Path) -> None:
    user = Upstream("u1", "user")
    async with limited_gateway(tmp_path, user, rate_limit_auth="2/minute") as client:
        logins = [(await client.post("/api/auth/login", json={})).status_code for _ in range(3)]
        refused = await client.post("/api/auth/login", json={})
        register = await client.post("/api/auth/register", json={})
        me = await client.get("/api/users/me")

    assert logins == [200, 200, 429]
    assert refused.json()["error"]["details"]["limit"] == "auth"
    assert _limit_headers(refused)[:2] == ("2", "0")
    assert register.status_code == 200  # its own count
    assert me.status_code == 200 and _limit_headers(me)[0] == "100"  # the tier still has room


async def test_a_service_can_have_its_own_limit(tmp_path: Path) -> None:
    payment, product = Upstream("pay1", "payment"), Upstream("p1", "product")
    async with limited_gateway(
        tmp_path, payment, product, rate_limit_services={"payment": "2/hour"}
    ) as client:
        paying = [(await client.get("/api/payments/x")).status_code for _ in range(3)]
        browsing = [(await client.get("/api/products")).status_code for _ in range(3)]
    assert paying == [200, 200, 429]
    assert browsing == [200, 200, 200]


async def test_a_burst_past_the_bucket_is_refused_before_the_hourly_limit(tmp_path: Path) -> None:
    async with limited_gateway(
        tmp_path, Upstream("p1", "product"), burst_capacity=4, burst_refill_per_second=0.01
    ) as client:
        answers = [await client.get("/api/products") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[4].json()["error"]["details"]["limit"] == "burst"
    assert _limit_headers(answers[4])[:2] == ("4", "0")
    assert int(answers[4].headers["retry-after"]) == 100  # one token at 0.01 a second


async def test_the_services_own_rate_limit_answer_goes_through_unchanged(tmp_path: Path) -> None:
    class Throttling(Upstream):
        async def answer(self, request: web.Request) -> web.Response:
            headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "Retry-After": "60"}
            body = {"error": {"code": "rate_limited", "message": "too many failed logins"}}
            return web.json_response(body, status=429, headers=headers)

    async with limited_gateway(tmp_path, Throttling("u1", "user")) as client:
        answer = await client.post("/api/auth/login", json={})
    assert answer.status_code == 429
    assert answer.headers.get_list("x-ratelimit-limit") == ["5"]
    assert answer.headers["retry-after"] == "60"


async def test_a_bad_token_counts_as_an_anonymous_request(tmp_path: Path) -> None:
    forged = {"Authorization": "Bearer not.a.token"}
    async with limited_gateway(tmp_path, Upstream("p1", "product"), rate_limit_anonymous="2/hour") as client:
        answers = [await client.get("/api/products", headers=forged) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert _limit_headers(answers[0])[:2] == ("2", "1")


def _store_errors() -> float:
    return REGISTRY.get_sample_value("rate_limit_store_errors_total") or 0.0


async def test_with_the_store_down_requests_are_answered_and_counted_in_memory(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: connections refused
        s.bind(("127.0.0.1", 0))
        dead_store = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    before = _store_errors()
    async with limited_gateway(
        tmp_path, Upstream("p1", "product"), store_url=dead_store, rate_limit_anonymous="3/hour"
    ) as client:
        started = time.monotonic()
        answers = [await client.get("/api/products") for _ in range(4)]
        elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert _limit_headers(answers[0])[:2] == ("3", "2")
    assert _store_errors() - before == 1  # tried once; the next try waits a few seconds
    assert elapsed < 2.0
