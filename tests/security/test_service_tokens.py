"""Zero trust inside: service tokens by client credentials (POST /oauth/token at the user
service), and identity headers that count only alongside a valid service token.

Services run in-process (real SQLite, in-memory bus); tokens come from the real endpoint.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from msashop.chassis.auth import SERVICE_TOKEN_HEADER, TokenVerifier, require_service
from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.errors import install_error_handlers
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.service_tokens import ServiceTokens, client_credentials
from msashop.chassis.signing import SigningKey
from msashop.gateway.headers import upstream_headers
from msashop.gateway.routes import resolve
from msashop.services.product.config import ProductSettings
from msashop.services.product.main import create_service as create_product
from msashop.supervisor import client_secrets
from tests.security.conftest import bearer, register, tokens, user_service
from tests.service_harness import ServiceHarness, running

SERVICES = ["user", "product", "order", "inventory", "gateway"]


def secret_of(data_dir: Path, service: str) -> str:
    return client_secrets.secret_file(data_dir, service).read_text().strip()


@pytest.fixture
async def user(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    registry = client_secrets.ensure(tmp_path, SERVICES)  # what `msashop up` writes
    async with user_service(tmp_path, clients_file=registry) as harness:
        yield harness


async def ask(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/oauth/token", data=form)


async def service_token(user: ServiceHarness, tmp_path: Path, caller: str, audience: str) -> str:
    answer = await ask(
        user.client,
        grant_type="client_credentials",
        client_id=caller,
        client_secret=secret_of(tmp_path, caller),
        audience=audience,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def verifier_at(user: ServiceHarness, service: str) -> TokenVerifier:
    verifier = TokenVerifier(None, InMemoryRevocationStore(), service=service)
    verifier.set_jwks((await user.client.get("/.well-known/jwks.json")).json())
    return verifier


# --- the token endpoint ---------------------------------------------------------------------------
async def test_client_credentials_give_a_five_minute_token_for_one_service(user, tmp_path) -> None:
    answer = await ask(
        user.client,
        grant_type="client_credentials",
        client_id="order",
        client_secret=secret_of(tmp_path, "order"),
        audience="product",
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    caller = await (await verifier_at(user, "product")).verify_service(body["access_token"])
    claims = caller.claims
    assert caller.name == "order" and claims["aud"] == "product" and claims["typ"] == "service"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"] and claims["nbf"] <= claims["iat"]
    with pytest.raises(Exception, match="service token refused"):  # worth nothing anywhere else
        await (await verifier_at(user, "inventory")).verify_service(body["access_token"])


async def test_basic_auth_and_json_with_resource_work_too(user, tmp_path) -> None:
    basic = base64.b64encode(f"gateway:{secret_of(tmp_path, 'gateway')}".encode()).decode()
    answer = await user.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "resource": "order"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    as_json = await user.client.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "order",
            "client_secret": secret_of(tmp_path, "order"),
            "audience": "user",
        },
    )
    assert as_json.status_code == 200, as_json.text


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "not-the-secret"}, 401, "invalid_client"),
        ({"client_id": "billing"}, 401, "invalid_client"),  # no such client
        ({"client_id": "gateway"}, 401, "invalid_client"),  # order's secret is order's only
        ({"client_secret": ""}, 401, "invalid_client"),
        ({"audience": "billing"}, 400, "invalid_target"),
        ({"audience": ""}, 400, "invalid_target"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_bad_requests_get_no_token(
    user, tmp_path, change: dict[str, str], status: int, error: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "order",
        "client_secret": secret_of(tmp_path, "order"),
        "audience": "product",
        **change,
    }
    answer = await ask(user.client, **form)
    assert answer.status_code == status and answer.json()["error"] == error
    assert "access_token" not in answer.json()


async def test_a_user_token_is_no_client_credential(user, tmp_path) -> None:
    await register(user.client)
    access = (await tokens(user.client))["access_token"]
    answer = await user.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": "product"},
        headers=bearer(access),
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


async def test_a_repeated_parameter_or_an_unreadable_body_is_refused(user, tmp_path) -> None:
    secret = secret_of(tmp_path, "order")
    twice = (
        f"grant_type=client_credentials&client_id=order&client_secret={secret}&audience=user&audience=product"
    )
    answer = await user.client.post(
        "/oauth/token", content=twice, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    text = await user.client.post("/oauth/token", content="hello", headers={"Content-Type": "text/plain"})
    assert text.status_code == 400 and text.json()["error"] == "invalid_request"


def test_the_gateway_does_not_expose_the_token_endpoint() -> None:
    assert resolve("/oauth/token") is None
    assert resolve("/api/oauth/token") is None
    assert resolve("/api/auth/../../oauth/token") is None


def test_the_gateway_never_passes_a_clients_service_token_on() -> None:
    sent = upstream_headers(
        [(SERVICE_TOKEN_HEADER, "leaked"), ("X-User-Id", "someone")],
        principal=None,
        request_id=None,
        client_ip=None,
        proto="http",
    )
    assert not any(name.lower() in ("x-service-token", "x-user-id") for name, _ in sent)


async def test_the_provider_gets_tokens_from_the_endpoint(user, tmp_path) -> None:
    class Client:  # the service client's `post`, answered by the in-process user service
        async def post(self, service: str, path: str, **kwargs: Any) -> Any:
            assert service == "user" and kwargs.pop("service_token") is False
            return (await user.client.post(path, **kwargs)).json()

    provider = ServiceTokens(client_credentials(Client(), "order", secret_of(tmp_path, "order")))  # type: ignore[arg-type]
    token = await provider.get("product")
    assert token is not None and await provider.get("product") == token  # cached
    assert (await (await verifier_at(user, "product")).verify_service(token)).name == "order"
    wrong = ServiceTokens(client_credentials(Client(), "order", "guessed"))  # type: ignore[arg-type]
    assert await wrong.get("product") is None


# --- identity headers -----------------------------------------------------------------------------
async def test_x_user_id_without_a_service_token_is_ignored(user, tmp_path) -> None:
    alice = await register(user.client)
    spoofed = {"X-User-Id": alice["id"], "X-User-Roles": "admin"}
    refused = await user.client.get("/users/me", headers=spoofed)
    assert refused.status_code == 401
    keys = await user.client.get("/admin/keys", headers=spoofed)
    assert keys.status_code == 401


async def test_x_user_id_counts_with_a_valid_service_token_for_this_service(user, tmp_path) -> None:
    alice = await register(user.client)
    vouched = {"X-User-Id": alice["id"], "X-User-Roles": "customer"}
    token = await service_token(user, tmp_path, "gateway", "user")
    me = await user.client.get("/users/me", headers={**vouched, SERVICE_TOKEN_HEADER: token})
    assert me.status_code == 200 and me.json()["email"] == "alice@example.com"
    elsewhere = await service_token(user, tmp_path, "gateway", "product")  # product's, not user's
    refused = await user.client.get("/users/me", headers={**vouched, SERVICE_TOKEN_HEADER: elsewhere})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_service_token"
    forged = await user.client.get("/users/me", headers={**vouched, SERVICE_TOKEN_HEADER: "x.y.z"})
    assert forged.status_code == 401


async def test_a_user_access_token_in_the_service_token_header_is_refused(user, tmp_path) -> None:
    alice = await register(user.client)
    access = (await tokens(user.client))["access_token"]
    answer = await user.client.get(
        "/users/me", headers={"X-User-Id": alice["id"], SERVICE_TOKEN_HEADER: access}
    )
    assert answer.status_code == 401


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    settings = ProductSettings.load("product", data_dir=tmp_path / "product")
    async with running(create_product(settings, bus=InMemoryBus())) as harness:
        yield harness


NEW_PRODUCT = {"sku": "ZT-1", "name": "Zero", "description": "", "price": "1.00", "category": "books"}


async def test_roles_from_headers_count_only_with_a_service_token(product: ServiceHarness) -> None:
    admin = {"X-User-Id": "op-1", "X-User-Roles": "admin"}
    spoofed = await product.client.post("/products", json=NEW_PRODUCT, headers=admin)
    assert spoofed.status_code == 401
    gateway, _ = product.key.service_token("gateway", "product")
    created = await product.client.post(
        "/products", json=NEW_PRODUCT, headers={**admin, SERVICE_TOKEN_HEADER: gateway}
    )
    assert created.status_code == 201, created.text
    customer = {"X-User-Id": "c-1", "X-User-Roles": "customer", SERVICE_TOKEN_HEADER: gateway}
    forbidden = await product.client.post("/products", json={**NEW_PRODUCT, "sku": "ZT-2"}, headers=customer)
    assert forbidden.status_code == 403


# --- service-only endpoints -----------------------------------------------------------------------
async def test_the_batch_lookup_shows_everyone_to_order_only(user, tmp_path) -> None:
    alice = await register(user.client)
    bob = await register(user.client, "bob@example.com")
    ids = {"ids": f"{alice['id']},{bob['id']}"}
    order = await service_token(user, tmp_path, "order", "user")
    everyone = await user.client.get("/users/batch", params=ids, headers={SERVICE_TOKEN_HEADER: order})
    assert sorted(u["email"] for u in everyone.json()) == ["alice@example.com", "bob@example.com"]
    # The gateway's token is no pass: it forwards customers' requests, who see only themselves.
    gateway = await service_token(user, tmp_path, "gateway", "user")
    anonymous = await user.client.get("/users/batch", params=ids, headers={SERVICE_TOKEN_HEADER: gateway})
    assert anonymous.status_code == 401
    access = (await tokens(user.client))["access_token"]
    own = await user.client.get(
        "/users/batch", params=ids, headers={**bearer(access), SERVICE_TOKEN_HEADER: gateway}
    )
    assert [u["email"] for u in own.json()] == ["alice@example.com"]


async def test_require_service_refuses_users_and_other_services(user, tmp_path) -> None:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = await verifier_at(user, "inventory")

    @app.post("/internal/reserve", dependencies=[Depends(require_service("order"))])
    async def reserve() -> dict[str, str]:
        return {"ok": "yes"}

    await register(user.client)
    access = (await tokens(user.client))["access_token"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://inventory"
    ) as client:
        as_user = await client.post("/internal/reserve", headers=bearer(access))
        assert as_user.status_code == 401 and as_user.json()["error"]["code"] == "service_token_required"
        admin_in_header = await client.post("/internal/reserve", headers={SERVICE_TOKEN_HEADER: access})
        assert admin_in_header.status_code == 401
        gateway = await service_token(user, tmp_path, "gateway", "inventory")
        assert (
            await client.post("/internal/reserve", headers={SERVICE_TOKEN_HEADER: gateway})
        ).status_code == 403
        order = await service_token(user, tmp_path, "order", "inventory")
        assert (
            await client.post("/internal/reserve", headers={SERVICE_TOKEN_HEADER: order})
        ).status_code == 200


# --- production -----------------------------------------------------------------------------------
async def test_production_refuses_to_start_the_user_service_without_the_registry(tmp_path: Path) -> None:
    pem = SigningKey.generate().pem().decode()
    with pytest.raises(RuntimeError, match="no client registry"):
        async with user_service(tmp_path, env="production", signing_keys_pem=pem):
            pass


async def test_production_refuses_to_start_a_service_without_a_client_secret(tmp_path: Path) -> None:
    settings = ProductSettings.load("product", data_dir=tmp_path, env="production")
    with pytest.raises(RuntimeError, match="no client secret"):
        async with running(create_product(settings, bus=InMemoryBus())):
            pass
    secret = client_secrets.secret_file(tmp_path, "product")
    client_secrets.ensure(tmp_path, ["product"])
    settings = ProductSettings.load("product", data_dir=tmp_path, env="production", client_secret_file=secret)
    async with running(create_product(settings, bus=InMemoryBus())) as product:
        assert product.service.tokens is not None
