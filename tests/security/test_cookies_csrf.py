"""The web UI's cookie session end to end through the real gateway and the real user service:
HttpOnly token cookies instead of tokens in the body, the CSRF double submit and the Origin check
on cookie-authenticated writes, refresh and logout by cookie, and a bearer token winning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from msashop.gateway.cookies import read
from tests.security.conftest import PASSWORD, user_service
from tests.security.gateway_harness import gateway, served
from tests.service_harness import ServiceHarness

ALLOWED = "https://shop.example.com"


@dataclass
class Edge:
    client: httpx.AsyncClient  # the gateway
    user: ServiceHarness


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    async with user_service(tmp_path / "user") as user, served(user.service.app) as url:
        async with gateway(tmp_path, {"user": url}, user.key, cors_origins=[ALLOWED]) as (_, client):
            yield Edge(client, user)


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie by name: its value and attributes (lower-case names)."""
    found: dict[str, dict[str, str]] = {}
    for line in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in line.split(";"))
        name, _, value = first.partition("=")
        found[name] = {"value": value.strip('"')} | {
            key.lower(): val for key, _, val in (a.partition("=") for a in attributes)
        }
    return found


def jar(cookies: dict[str, dict[str, str]], *names: str) -> str:
    return "; ".join(f"{n}={cookies[n]['value']}" for n in names)


async def register(client: httpx.AsyncClient, email: str) -> None:
    body = {"email": email, "password": PASSWORD, "name": "Cookie"}
    assert (await client.post("/api/auth/register", json=body)).status_code == 201


async def cookie_login(client: httpx.AsyncClient, email: str = "c@example.com") -> dict[str, dict[str, str]]:
    await register(client, email)
    answer = await client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD, "session": "cookie"}
    )
    assert answer.status_code == 200, answer.text
    return set_cookies(answer)


def session_headers(
    cookies: dict[str, dict[str, str]], csrf: str | None = "match", **more: str
) -> dict[str, str]:
    headers = {"Cookie": jar(cookies, "msashop_access", "msashop_refresh", "msashop_csrf"), **more}
    if csrf is not None:
        headers["X-CSRF-Token"] = cookies["msashop_csrf"]["value"] if csrf == "match" else csrf
    return headers


async def test_a_cookie_login_sets_httponly_strict_cookies_and_keeps_the_tokens_out_of_the_body(
    edge: Edge,
) -> None:
    await register(edge.client, "c@example.com")
    answer = await edge.client.post(
        "/api/auth/login", json={"email": "c@example.com", "password": PASSWORD, "session": "cookie"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body == {"session": "cookie", "token_type": "Bearer", "expires_in": 900}
    cookies = set_cookies(answer)
    access, refresh, csrf = cookies["msashop_access"], cookies["msashop_refresh"], cookies["msashop_csrf"]
    for cookie in (access, refresh, csrf):
        assert "secure" in cookie and cookie["samesite"].lower() == "strict"
    assert "httponly" in access and "httponly" in refresh and "httponly" not in csrf
    assert (access["path"], access["max-age"]) == ("/", "900")
    assert refresh["path"] == "/api/auth" and int(refresh["max-age"]) == 7 * 24 * 3600
    assert csrf["path"] == "/" and len(csrf["value"]) >= 32
    assert access["value"].count(".") == 2  # the access token (a JWT) itself
    assert access["value"] not in answer.text and refresh["value"] not in answer.text

    # An API client's login is unchanged: tokens in the body, no cookies.
    plain = await edge.client.post("/api/auth/login", json={"email": "c@example.com", "password": PASSWORD})
    assert set(plain.json()) >= {"access_token", "refresh_token"} and "set-cookie" not in plain.headers


async def test_the_access_cookie_authenticates_and_writes_need_the_csrf_double_submit(edge: Edge) -> None:
    cookies = await cookie_login(edge.client)
    me = await edge.client.get("/api/users/me", headers=session_headers(cookies, csrf=None))
    assert me.status_code == 200 and me.json()["email"] == "c@example.com"

    for csrf in (None, "not-the-cookie", ""):
        refused = await edge.client.post(
            "/api/auth/logout", json={}, headers=session_headers(cookies, csrf=csrf)
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    foreign = session_headers(cookies, Origin="https://evil.example")
    refused = await edge.client.post("/api/auth/logout", json={}, headers=foreign)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    still = await edge.client.get("/api/users/me", headers=session_headers(cookies, csrf=None))
    assert still.status_code == 200, "a refused write changed nothing"

    out = await edge.client.post(
        "/api/auth/logout", json={}, headers=session_headers(cookies, Origin="http://gw.test")
    )
    assert out.status_code == 204
    cleared = set_cookies(out)
    assert {n: c["max-age"] for n, c in cleared.items()} == dict.fromkeys(
        ["msashop_access", "msashop_refresh", "msashop_csrf"], "0"
    )
    assert cleared["msashop_refresh"]["path"] == "/api/auth"
    gone = await edge.client.get("/api/users/me", headers=session_headers(cookies, csrf=None))
    assert gone.status_code == 401, "the session is over"


async def test_an_allowed_origin_may_write_with_the_cookie_session(edge: Edge) -> None:
    cookies = await cookie_login(edge.client)
    out = await edge.client.post(
        "/api/auth/logout", json={}, headers=session_headers(cookies, Origin=ALLOWED)
    )
    assert out.status_code == 204


async def test_refresh_by_cookie_renews_the_cookies_and_a_replayed_cookie_ends_the_session(
    edge: Edge,
) -> None:
    cookies = await cookie_login(edge.client)
    refresh_only = {"Cookie": jar(cookies, "msashop_refresh", "msashop_csrf")}
    refused = await edge.client.post("/api/auth/refresh", headers=refresh_only)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"

    with_csrf = refresh_only | {"X-CSRF-Token": cookies["msashop_csrf"]["value"]}
    renewed = await edge.client.post("/api/auth/refresh", headers=with_csrf)
    assert renewed.status_code == 200 and renewed.json()["session"] == "cookie"
    fresh = set_cookies(renewed)
    assert fresh["msashop_refresh"]["value"] != cookies["msashop_refresh"]["value"]
    assert fresh["msashop_access"]["value"] not in renewed.text
    me = await edge.client.get("/api/users/me", headers=session_headers(fresh, csrf=None))
    assert me.status_code == 200

    replayed = await edge.client.post("/api/auth/refresh", headers=with_csrf)
    assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "refresh_token_reused"
    assert {c["max-age"] for c in set_cookies(replayed).values()} == {"0"}, "the dead session's cookies go"
    dead = await edge.client.get("/api/users/me", headers=session_headers(fresh, csrf=None))
    assert dead.status_code == 401


async def test_a_bearer_token_wins_over_the_cookie_and_needs_no_csrf(edge: Edge) -> None:
    cookies = await cookie_login(edge.client, "cookie@example.com")
    await register(edge.client, "bearer@example.com")
    pair = (
        await edge.client.post("/api/auth/login", json={"email": "bearer@example.com", "password": PASSWORD})
    ).json()
    both = {"Authorization": f"Bearer {pair['access_token']}", "Cookie": jar(cookies, "msashop_access")}
    me = await edge.client.get("/api/users/me", headers=both)
    assert me.json()["email"] == "bearer@example.com"
    out = await edge.client.post(
        "/api/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=both
    )
    assert out.status_code == 204
    # The cookie's own session was not touched.
    mine = await edge.client.get("/api/users/me", headers=session_headers(cookies, csrf=None))
    assert mine.json()["email"] == "cookie@example.com"


async def test_login_and_register_need_no_csrf_even_with_stale_cookies(edge: Edge) -> None:
    stale = {"Cookie": "msashop_access=expired.or.forged; msashop_csrf=abc"}
    body = {"email": "s@example.com", "password": PASSWORD, "name": "Stale"}
    assert (await edge.client.post("/api/auth/register", json=body, headers=stale)).status_code == 201
    login = await edge.client.post(
        "/api/auth/login",
        json={"email": "s@example.com", "password": PASSWORD, "session": "cookie"},
        headers=stale,
    )
    assert login.status_code == 200 and "msashop_access" in set_cookies(login)
    # A bad access cookie is no 401 at the edge: the request goes on anonymous (public routes
    # work, the refresh call gets through) and a route that needs a user says so itself.
    anonymous = await edge.client.get("/api/users/me", headers=stale)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"


def test_the_gateway_keeps_other_cookies_byte_for_byte_and_stops_its_own() -> None:
    incoming: list[tuple[bytes, bytes]] = [
        (b"host", b"gw"),
        (
            b"cookie",
            b'theme="dark; blue"; msashop_access=a.b.c; lang=ko; msashop_csrf=xyz; msashop_refresh=r1',
        ),
    ]
    found: Any = read(incoming)
    assert (found.access, found.csrf, found.refresh) == (b"a.b.c", b"xyz", True)
    assert found.headers == [
        (b"host", b"gw"),
        (b"cookie", b'theme="dark; blue"; lang=ko; msashop_refresh=r1'),
    ]
    assert read([(b"cookie", b"theme=dark")]) is None
