"""The gateway against two fake upstream servers on real sockets."""

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service


@dataclass
class Fake:
    name: str
    url: str = ""
    ready: bool = True
    report: dict | None = None  # the /ready body (default: up)
    seen: list[dict] = field(default_factory=list)


async def _start(fake: Fake) -> web.AppRunner:
    async def ready(_: web.Request) -> web.Response:
        body = fake.report or {"status": "up", "checks": {}}
        return web.json_response(body, status=200 if fake.ready else 503)

    async def conflict(_: web.Request) -> web.Response:
        body = {"error": {"code": "conflict", "message": "email already registered"}}
        return web.json_response(body, status=409, headers={"X-Upstream-Note": "kept"})

    async def echo(request: web.Request) -> web.Response:
        seen = {
            "method": request.method,
            "path": request.rel_url.raw_path,
            "query": request.query_string,
            "body": (await request.read()).decode(),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        fake.seen.append(seen)
        return web.json_response({"upstream": fake.name, **seen})

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_post("/auth/register", conflict)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    return runner


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Env:
    service: Service
    client: httpx.AsyncClient
    key: SigningKey
    users: Fake
    catalog: Fake

    def point(self, **overrides: str | list[str]) -> None:
        """user, notification -> the `users` fake; everything else -> the `catalog` fake."""
        urls: dict[str, str | list[str]] = {
            name: self.catalog.url
            for name in ("product", "inventory", "order", "payment", "shipping", "legacy")
        }
        urls |= {"user": self.users.url, "notification": self.users.url}
        self.service.discovery = StaticDiscovery(urls | overrides)  # type: ignore[assignment]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    users, catalog = Fake("users"), Fake("catalog")
    runners = [await _start(users), await _start(catalog)]
    service = create_service(GatewaySettings.load("gateway", data_dir=tmp_path))
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    try:
        async with service.app.router.lifespan_context(service.app):
            transport = httpx.ASGITransport(app=service.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                e = Env(service, client, key, users, catalog)
                e.point()
                yield e
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_path_is_rewritten_and_query_and_body_forwarded(env: Env) -> None:
    answer = await env.client.put(
        "/api/products/p%201?q=tea&page=2",
        content=b'{"name": "Tea"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["upstream"] == "catalog"
    assert (seen["method"], seen["path"], seen["query"]) == ("PUT", "/products/p%201", "q=tea&page=2")
    assert json.loads(seen["body"]) == {"name": "Tea"}
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-request-id"] == answer.headers["x-request-id"]


async def test_each_prefix_reaches_its_own_service(env: Env) -> None:
    assert (await env.client.get("/api/auth/x")).json()["upstream"] == "users"
    assert (await env.client.get("/api/orders")).json()["upstream"] == "catalog"
    jwks = (await env.client.get("/.well-known/jwks.json")).json()
    assert (jwks["upstream"], jwks["path"]) == ("users", "/.well-known/jwks.json")


async def test_unknown_prefix_is_a_json_404(env: Env) -> None:
    answer = await env.client.get("/api/nope/1")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert env.users.seen == [] and env.catalog.seen == []


async def test_spoofed_identity_is_dropped_without_a_token(env: Env) -> None:
    answer = await env.client.get("/api/orders", headers={"X-User-Id": "admin", "X-User-Roles": "admin"})
    headers = answer.json()["headers"]
    assert "x-user-id" not in headers and "x-user-roles" not in headers


async def test_valid_token_forwards_identity_and_the_token(env: Env) -> None:
    token, _ = env.key.access_token("u42", ("customer", "admin"))
    answer = await env.client.get(
        "/api/orders", headers={"Authorization": f"Bearer {token}", "X-User-Id": "spoof"}
    )
    headers = answer.json()["headers"]
    assert headers["x-user-id"] == "u42"
    assert headers["x-user-roles"] == "customer,admin"
    assert headers["authorization"] == f"Bearer {token}"


async def test_bad_token_is_a_json_401_and_never_forwarded(env: Env) -> None:
    other, _ = SigningKey.generate().access_token("u42")
    for token in ("not-a-jwt", other):
        answer = await env.client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_token"
    assert env.catalog.seen == []


async def test_upstream_errors_pass_through_unchanged(env: Env) -> None:
    answer = await env.client.post("/api/auth/register", json={"email": "a@b.c"})
    assert answer.status_code == 409
    assert answer.json() == {"error": {"code": "conflict", "message": "email already registered"}}
    assert answer.headers["x-upstream-note"] == "kept"


async def test_unreachable_upstream_is_a_json_503_naming_it(env: Env) -> None:
    env.point(product=_closed_port_url())
    answer = await env.client.get("/api/products")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert error["details"] == {"service": "product"}
    assert "Traceback" not in answer.text
    metrics = (await env.client.get("/metrics")).text
    sample = 'gateway_upstream_requests_total{service="product",status_code="unavailable",subset="v1"}'
    assert sample in metrics


async def test_service_without_an_address_is_a_json_503(env: Env) -> None:
    env.service.discovery = StaticDiscovery({})  # type: ignore[assignment]
    answer = await env.client.get("/api/payments")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert (error["code"], error["details"]) == ("upstream_unavailable", {"service": "payment"})


async def test_body_over_one_mebibyte_is_refused_with_413(env: Env) -> None:
    limit = 1024 * 1024
    ok = await env.client.post("/api/orders", content=b"x" * limit)
    assert ok.status_code == 200 and len(ok.json()["body"]) == limit

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for _ in range(5):
            yield b"x" * (limit // 4)

    for content in (b"x" * (limit + 1), chunks()):
        answer = await env.client.post("/api/orders", content=content)
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
    assert len(env.catalog.seen) == 1


SERVICES = ("inventory", "legacy", "notification", "order", "payment", "product", "shipping", "user")


async def test_health_is_ok_when_every_service_is_ready(env: Env) -> None:
    answer = await env.client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["services"]) == ("ok", dict.fromkeys(SERVICES, "ok"))
    assert body["instances"]["product"] == {"product-1": {"state": "ok"}}


async def test_health_is_ok_while_one_instance_of_each_service_is_ready(env: Env) -> None:
    env.point(product=[_closed_port_url(), env.catalog.url])
    answer = await env.client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["services"]["product"] == "ok"
    assert body["instances"]["product"]["product-1"]["state"].startswith("down: ")
    assert body["instances"]["product"]["product-2"] == {"state": "ok"}


async def test_a_degraded_service_is_listed_and_health_stays_200(env: Env) -> None:
    env.users.report = {
        "status": "degraded",
        "checks": {
            "database": {"status": "up", "response_time_ms": 1.0},
            "product": {"status": "down", "response_time_ms": 2000.0, "error": "no answer within 2 s"},
        },
    }
    answer = await env.client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["services"]["user"] == body["services"]["notification"] == "degraded"
    assert body["services"]["product"] == "ok"
    # Which checks fail, never their errors: /health is public.
    assert body["instances"]["user"] == {"user-1": {"state": "degraded", "failing": ["product"]}}


async def test_health_is_503_naming_the_down_services(env: Env) -> None:
    env.point(inventory=_closed_port_url())
    env.users.ready = False
    answer = await env.client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    down = {name for name, state in body["services"].items() if state != "ok"}
    assert down == {"inventory", "user", "notification"}
    assert body["services"]["user"] == "down: answered 503"


async def test_storefront_is_served_at_the_root(env: Env) -> None:
    page = await env.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="login-email"' in page.text
    script = await env.client.get("/static/app.js")
    assert script.status_code == 200 and "/api/products" in script.text
    assert (await env.client.get("/static/style.css")).status_code == 200
