"""RBAC in every service (zero trust): the routes that need a user or the admin role, found in
each service's own app, asked by anonymous, customer, premium and admin callers, with a bearer
token and with the gateway's identity headers plus its service token. And the admin endpoint
that sets a user's roles.

Routes are classified from their dependencies (current_user / current_admin), so a new route is
in the matrix the day it is added. Requests carry dummy ids and an empty body: authorization is
decided before the body is read, so 401 and 403 mean what they say here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from msashop.chassis.auth import SERVICE_TOKEN_HEADER, current_admin, current_user
from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.signing import SigningKey
from tests.security.conftest import admin_headers, bearer, register, tokens, user_service
from tests.service_harness import ServiceHarness, running

ROLES_OF = {"customer": ("customer",), "premium": ("customer", "premium"), "admin": ("admin",)}
# Admin routes whose effect would spoil the rest of the run (they are still asked by the others).
NOT_AS_ADMIN = {("POST", "/admin/keys/rotate")}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    # FastAPI keeps an included router as one entry holding the router (`original_router`);
    # services include theirs without a prefix, so a route's own path is the one served.
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def guarded_routes(service: Service) -> list[tuple[str, str, str]]:
    """(method, path, "admin" | "user") for every route that needs a user or an admin."""
    found = []
    for route in _api_routes(service.app.routes):
        calls = set(_calls(route.dependant))
        need = "admin" if current_admin in calls else "user" if current_user in calls else None
        if need:
            found += [(method, route.path, need) for method in sorted(route.methods)]
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "rbac-1", path)


def identities(key: SigningKey, service: str, role: str) -> dict[str, dict[str, str]]:
    """The two ways a user reaches a service: their own token, or the gateway vouching for them."""
    token, _ = key.access_token(f"{role}-1", ROLES_OF[role])
    gateway, _ = key.service_token("gateway", service)
    headers = {"X-User-Id": f"{role}-1", "X-User-Roles": ",".join(ROLES_OF[role])}
    return {"bearer": bearer(token), "gateway": {**headers, SERVICE_TOKEN_HEADER: gateway}}


SERVICES = ["product", "inventory", "order", "payment", "notification"]


def build(name: str, data_dir: Path) -> Service:
    main = importlib.import_module(f"msashop.services.{name}.main")
    config = importlib.import_module(f"msashop.services.{name}.config")
    settings_class = next(
        v
        for v in vars(config).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    )
    service: Service = main.create_service(settings_class.load(name, data_dir=data_dir), bus=InMemoryBus())
    return service


async def check_matrix(harness: ServiceHarness) -> int:
    """Ask every guarded route as everyone; return how many routes were checked."""
    client, name = harness.client, harness.service.name
    routes = guarded_routes(harness.service)
    failures = []
    for method, path, need in routes:
        url = concrete(path)
        anonymous = await client.request(method, url, json={})
        if anonymous.status_code != 401:
            failures.append(f"{method} {path} anonymous: {anonymous.status_code}")
        for role in ROLES_OF:
            if role == "admin" and (method, path) in NOT_AS_ADMIN:
                continue
            for via, headers in identities(harness.key, name, role).items():
                status = (await client.request(method, url, json={}, headers=headers)).status_code
                refused = need == "admin" and role != "admin"
                if (refused and status != 403) or (not refused and status in (401, 403)):
                    failures.append(f"{method} {path} as {role} ({via}): {status}")
    assert not failures, failures
    return len(routes)


@pytest.mark.parametrize("name", SERVICES)
async def test_every_guarded_route_of_a_service_enforces_its_role(name: str, tmp_path: Path) -> None:
    async with running(build(name, tmp_path)) as harness:
        assert await check_matrix(harness) > 0


async def test_every_guarded_route_of_the_user_service_enforces_its_role(tmp_path: Path) -> None:
    async with user_service(tmp_path) as user:
        routes = {(m, p): need for m, p, need in guarded_routes(user.service)}
        assert routes[("PUT", "/users/{user_id}/roles")] == "admin"
        assert routes[("GET", "/admin/keys")] == "admin" and routes[("GET", "/users/me")] == "user"
        await check_matrix(user)


async def test_spoofed_headers_are_anonymous_everywhere(tmp_path: Path) -> None:
    async with running(build("order", tmp_path)) as order:
        spoofed = {"X-User-Id": "admin-1", "X-User-Roles": "admin"}
        for method, path, _ in guarded_routes(order.service):
            answer = await order.client.request(method, concrete(path), json={}, headers=spoofed)
            assert answer.status_code == 401, (method, path)


# --- PUT /users/{id}/roles --------------------------------------------------------------------------
async def test_an_admin_makes_a_customer_premium_and_the_next_token_says_so(user_api: ServiceHarness) -> None:
    client = user_api.client
    alice = await register(client)
    session = await tokens(client)
    admin = await admin_headers(client)
    answer = await client.put(
        f"/users/{alice['id']}/roles", json={"roles": ["premium", "customer"]}, headers=admin
    )
    assert answer.status_code == 200 and answer.json()["roles"] == ["customer", "premium"]
    # Nothing taken away: the session goes on, and its next token carries the new role.
    renewed = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert renewed.status_code == 200
    principal = await user_api.service.verifier.verify(renewed.json()["access_token"])
    assert principal.roles == ("customer", "premium")


async def test_taking_a_role_away_ends_the_users_sessions(user_api: ServiceHarness) -> None:
    client = user_api.client
    alice = await register(client)
    admin = await admin_headers(client)
    await client.put(f"/users/{alice['id']}/roles", json={"roles": ["customer", "premium"]}, headers=admin)
    session = await tokens(client)
    assert (await client.get("/users/me", headers=bearer(session["access_token"]))).status_code == 200
    demoted = await client.put(f"/users/{alice['id']}/roles", json={"roles": ["customer"]}, headers=admin)
    assert demoted.status_code == 200
    old = await client.get("/users/me", headers=bearer(session["access_token"]))
    assert old.status_code == 401 and old.json()["error"]["code"] == "token_revoked"
    refused = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refused.status_code == 401
    fresh = (await tokens(client))["access_token"]
    assert (await user_api.service.verifier.verify(fresh)).roles == ("customer",)


@pytest.mark.parametrize(
    "roles", [[], ["superuser"], ["customer", "customer"], ["customer", "premium", "admin", "x"], "admin"]
)
async def test_only_known_roles_are_accepted(user_api: ServiceHarness, roles: Any) -> None:
    client = user_api.client
    alice = await register(client)
    admin = await admin_headers(client)
    answer = await client.put(f"/users/{alice['id']}/roles", json={"roles": roles}, headers=admin)
    assert answer.status_code == 422
    me = await client.get("/users/me", headers=bearer((await tokens(client))["access_token"]))
    assert me.json()["roles"] == ["customer"]  # unchanged


async def test_roles_of_no_one_and_an_admin_demoting_themselves(user_api: ServiceHarness) -> None:
    client = user_api.client
    admin = await admin_headers(client)
    missing = await client.put("/users/nobody/roles", json={"roles": ["customer"]}, headers=admin)
    assert missing.status_code == 404
    me = (await client.get("/users/me", headers=admin)).json()
    own = await client.put(f"/users/{me['id']}/roles", json={"roles": ["customer"]}, headers=admin)
    assert own.status_code == 409 and own.json()["error"]["code"] == "own_admin_role"


async def test_a_customer_cannot_give_themselves_a_role(user_api: ServiceHarness) -> None:
    client = user_api.client
    alice = await register(client)
    access = bearer((await tokens(client))["access_token"])
    answer = await client.put(f"/users/{alice['id']}/roles", json={"roles": ["admin"]}, headers=access)
    assert answer.status_code == 403
    spoofed = {"X-User-Id": alice["id"], "X-User-Roles": "admin"}
    assert (
        await client.put(f"/users/{alice['id']}/roles", json={"roles": ["admin"]}, headers=spoofed)
    ).status_code == 401


@pytest.fixture
async def user_api(tmp_path: Path) -> Any:
    async with user_service(tmp_path) as harness:
        yield harness
