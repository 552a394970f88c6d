"""CORS at the gateway: an allow-list of exact origins, preflights answered at the edge (204 or
403), and no CORS headers for anyone else (nor for everyone, when the list is empty)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from msashop.chassis.signing import SigningKey
from tests.security.gateway_harness import Echo, echo_server, gateway

ALLOWED = "https://shop.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-csrf-token",
}


@pytest.fixture
async def upstream() -> AsyncIterator[Echo]:
    async with echo_server() as echo:
        yield echo


@pytest.fixture
async def client(tmp_path: Path, upstream: Echo) -> AsyncIterator[httpx.AsyncClient]:
    key = SigningKey.generate()
    async with gateway(
        tmp_path, {"order": upstream.url}, key, cors_origins=[ALLOWED, "http://localhost:5173"]
    ) as (
        _,
        client,
    ):
        yield client


async def test_a_preflight_from_an_allowed_origin_is_answered_at_the_edge(
    client: httpx.AsyncClient, upstream: Echo
) -> None:
    answer = await client.options("/api/orders", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert answer.status_code == 204
    headers = answer.headers
    assert headers["access-control-allow-origin"] == ALLOWED  # the exact origin, never "*"
    assert headers["access-control-allow-credentials"] == "true"
    assert set(headers["access-control-allow-methods"].split(", ")) >= {
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    }
    allowed_headers = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert allowed_headers >= {"authorization", "content-type", "idempotency-key", "x-csrf-token"}
    assert int(headers["access-control-max-age"]) > 0
    assert "Origin" in headers["vary"]
    assert upstream.seen == [], "a preflight never reaches a service"


async def test_a_preflight_from_any_other_origin_is_403_without_cors_headers(
    client: httpx.AsyncClient, upstream: Echo
) -> None:
    for origin in (
        "https://evil.example",
        "https://shop.example.com.evil.example",
        "null",
        "http://shop.example.com",
    ):
        answer = await client.options("/api/orders", headers={"Origin": origin, **PREFLIGHT})
        assert answer.status_code == 403, origin
        assert answer.json()["error"]["code"] == "cors_forbidden"
        assert not [h for h in answer.headers if h.startswith("access-control-")], origin
    assert upstream.seen == []


async def test_an_allowed_origin_reads_answers_with_credentials_and_others_get_no_cors_headers(
    client: httpx.AsyncClient,
) -> None:
    allowed = await client.get("/api/orders", headers={"Origin": "http://localhost:5173"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "Origin" in allowed.headers["vary"]

    other = await client.get("/api/orders", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200  # answered; the browser keeps it from the page
    assert not [h for h in other.headers if h.startswith("access-control-")]
    plain = await client.get("/api/orders")  # same-origin or not a browser: nothing added
    assert not [h for h in plain.headers if h.startswith("access-control-")]


async def test_without_an_allow_list_only_the_gateways_own_origin_passes_a_preflight(
    tmp_path: Path, upstream: Echo
) -> None:
    async with gateway(tmp_path, {"order": upstream.url}, SigningKey.generate()) as (_, client):
        refused = await client.options("/api/orders", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert refused.status_code == 403
        own = await client.options("/api/orders", headers={"Origin": "http://gw.test", **PREFLIGHT})
        assert own.status_code == 204 and own.headers["access-control-allow-origin"] == "http://gw.test"
        answer = await client.get("/api/orders", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in answer.headers
