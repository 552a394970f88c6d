"""Security headers on every gateway answer: the API's fast path, the storefront, static files,
health, errors (a 500 included), with HSTS only for requests that came over HTTPS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service
from msashop.gateway.security_headers import SecurityHeaders

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def assert_secured(answer: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert answer.headers.get(name) == value, (answer.request.url, name)
    csp = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert len(answer.headers.get_list("content-security-policy")) == 1


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    service = create_service(GatewaySettings.load("gateway", data_dir=tmp_path, rate_limits=False))

    async def boom() -> None:
        raise RuntimeError("a bug")

    service.app.add_api_route("/boom", boom)
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


async def test_every_kind_of_answer_carries_the_security_headers(gateway: httpx.AsyncClient) -> None:
    answers = {
        "storefront": await gateway.get("/"),
        "static": await gateway.get("/static/app.js"),
        "health": await gateway.get("/health"),
        "fast path error": await gateway.get("/api/nope/1"),
        "upstream unavailable": await gateway.post("/api/orders", json={}),
        "too large": await gateway.post("/api/orders", content=b"x" * (1024 * 1024 + 1)),
        "unknown route": await gateway.get("/nothing-here"),
        "unhandled exception": await gateway.get("/boom"),
    }
    assert [a.status_code for a in answers.values()] == [200, 200, 503, 404, 503, 413, 404, 500]
    for answer in answers.values():
        assert_secured(answer)
        assert "strict-transport-security" not in answer.headers  # plain HTTP


async def test_the_storefront_policy_allows_its_own_files_only(gateway: httpx.AsyncClient) -> None:
    csp = (await gateway.get("/")).headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    docs = (await gateway.get("/docs")).headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in docs, "the API docs page loads Swagger UI"


async def test_hsts_only_when_the_request_came_over_https(gateway: httpx.AsyncClient) -> None:
    proxied = await gateway.get("/", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    assert (
        "strict-transport-security"
        not in (await gateway.get("/", headers={"X-Forwarded-Proto": "http"})).headers
    )


async def test_a_header_the_answer_already_has_is_not_sent_twice() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"x-frame-options", b"SAMEORIGIN"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=SecurityHeaders(app))
    async with httpx.AsyncClient(transport=transport, base_url="https://x") as client:
        answer = await client.get("/")
    assert answer.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" in answer.headers  # the scheme was https
