"""The auth API against a real SQLite database, an in-memory bus and revocation store."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from msashop.chassis.auth import AUDIENCE, ISSUER, TokenVerifier
from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.services.user.config import UserSettings
from msashop.services.user.db import refresh_tokens
from msashop.services.user.main import create_service
from tests.service_harness import ServiceHarness, running

PASSWORD = "correct-horse-42"


def _running(tmp_path: Path, **settings: Any) -> AbstractAsyncContextManager[ServiceHarness]:
    """A user service on `tmp_path`. It verifies the tokens it issues itself with its own key,
    so the harness signs with that key rather than a fresh one."""
    service = create_service(UserSettings.load("user", data_dir=tmp_path, **settings), bus=InMemoryBus())
    return running(service, key=service.app.state.token_issuer.key)


@pytest.fixture
async def user_api(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    async with _running(tmp_path) as harness:
        yield harness


async def _register(client: httpx.AsyncClient, email: str = "alice@example.com") -> dict[str, Any]:
    response = await client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "name": "Alice"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _login(
    client: httpx.AsyncClient, email: str = "alice@example.com", password: str = PASSWORD
) -> Any:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_register_creates_a_customer_and_publishes_user_registered(user_api) -> None:
    service, client = user_api.service, user_api.client
    user = await _register(client, "Alice@Example.COM")
    assert user["email"] == "alice@example.com" and user["name"] == "Alice"
    assert user["roles"] == ["customer"]
    await service.relay.publish_pending()
    events = [e for e in service.bus.published if e.type == "user.registered"]
    assert [e.data for e in events] == [
        {"user_id": user["id"], "email": "alice@example.com", "name": "Alice"}
    ]
    assert events[0].key == user["id"]


async def test_registering_a_taken_email_in_any_case_is_409(user_api) -> None:
    client = user_api.client
    await _register(client)
    response = await client.post(
        "/auth/register", json={"email": "ALICE@example.com", "password": PASSWORD, "name": "Other"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD, "name": "A"},
        {"email": "a@example.com", "password": "short1", "name": "A"},
        {"email": "a@example.com", "password": "no-digits-here", "name": "A"},
        {"email": "a@example.com", "password": "1234567890", "name": "A"},
        {"email": "a@example.com", "password": "a1" * 65, "name": "A"},
        {"email": "a@example.com", "password": PASSWORD, "name": "   "},
        {"email": "a@example.com", "password": PASSWORD, "name": "x" * 101},
        {"email": "a@example.com", "password": PASSWORD},
        {"email": "a@example.com", "password": PASSWORD, "name": "A", "roles": ["admin"]},
        {"email": "a@example.com", "password": PASSWORD, "name": "A", "id": "chosen-id"},
    ],
)
async def test_bad_registration_is_422_and_creates_nothing(user_api, body) -> None:
    client = user_api.client
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    login = await client.post("/auth/login", json={"email": "a@example.com", "password": PASSWORD})
    assert login.status_code == 401


async def test_roles_cannot_be_mass_assigned(user_api) -> None:
    client = user_api.client
    body = {"email": "eve@example.com", "password": PASSWORD, "name": "Eve", "roles": ["admin"]}
    assert (await client.post("/auth/register", json=body)).status_code == 422
    await _register(client, "eve@example.com")
    me = await client.get("/users/me", headers=_bearer(await _login(client, "eve@example.com")))
    assert me.json()["roles"] == ["customer"]


async def test_login_returns_a_bearer_pair_and_me_answers_the_caller(user_api) -> None:
    client = user_api.client
    user = await _register(client)
    tokens = await _login(client, "  ALICE@example.com ")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert tokens["refresh_token"] and tokens["access_token"]
    me = await client.get("/users/me", headers=_bearer(tokens))
    assert me.status_code == 200
    assert me.json() == user


async def test_wrong_password_and_unknown_email_get_the_same_401(user_api) -> None:
    client = user_api.client
    await _register(client)
    wrong = await client.post("/auth/login", json={"email": "alice@example.com", "password": "wrong-pass-1"})
    unknown = await client.post("/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_me_needs_a_valid_token(user_api) -> None:
    client = user_api.client
    assert (await client.get("/users/me")).status_code == 401
    bad = await client.get("/users/me", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401


async def test_refresh_rotates_and_the_new_pair_works(user_api) -> None:
    client = user_api.client
    await _register(client)
    first = await _login(client)
    response = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["token_type"] == "Bearer"
    assert (await client.get("/users/me", headers=_bearer(second))).status_code == 200
    again = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(user_api) -> None:
    client = user_api.client
    await _register(client)
    first = await _login(client)
    other_session = await _login(client)
    second = (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()

    reuse = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    # Every token of the family is dead, refresh and access alike ...
    assert (
        await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    for tokens in (first, second):
        me = await client.get("/users/me", headers=_bearer(tokens))
        assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"
    # ... while another session of the same user is untouched.
    assert (await client.get("/users/me", headers=_bearer(other_session))).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": other_session["refresh_token"]})
    ).status_code == 200


async def test_unknown_and_expired_refresh_tokens_are_401(user_api) -> None:
    service, client = user_api.service, user_api.client
    await _register(client)
    unknown = await client.post("/auth/refresh", json={"refresh_token": "made-up"})
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_refresh_token"
    tokens = await _login(client)
    async with service.unit_of_work() as uow:
        await uow.session.execute(
            sa.update(refresh_tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await uow.commit()
    expired = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "invalid_refresh_token"


async def test_logout_kills_the_access_and_refresh_token_at_once(user_api) -> None:
    client = user_api.client
    await _register(client)
    tokens = await _login(client)
    other_session = await _login(client)
    out = await client.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=_bearer(tokens)
    )
    assert out.status_code == 204
    me = await client.get("/users/me", headers=_bearer(tokens))
    assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"
    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await client.get("/users/me", headers=_bearer(other_session))).status_code == 200


async def test_logout_needs_an_access_token(user_api) -> None:
    client = user_api.client
    await _register(client)
    tokens = await _login(client)
    assert (
        await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    assert (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 200


async def test_logout_with_another_users_refresh_token_ends_both_sessions(user_api) -> None:
    client = user_api.client
    await _register(client, "alice@example.com")
    await _register(client, "bob@example.com")
    alice = await _login(client, "alice@example.com")
    bob = await _login(client, "bob@example.com")
    out = await client.post(
        "/auth/logout", json={"refresh_token": bob["refresh_token"]}, headers=_bearer(alice)
    )
    assert out.status_code == 204
    assert (await client.get("/users/me", headers=_bearer(alice))).status_code == 401
    assert (
        await client.post("/auth/refresh", json={"refresh_token": alice["refresh_token"]})
    ).status_code == 401
    # Bob's token was presented by someone else, so it leaked: it is revoked as well.
    assert (
        await client.post("/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    ).status_code == 401


async def test_batch_shows_a_customer_only_themselves_and_an_admin_everyone(tmp_path: Path) -> None:
    async with _running(tmp_path, admin_password="batch-admin-pass-1") as user:
        client = user.client
        alice = await _register(client, "alice@example.com")
        bob = await _register(client, "bob@example.com")
        ids = ",".join([alice["id"], bob["id"], "missing"])
        assert (await client.get("/users/batch", params={"ids": ids})).status_code == 401
        # Another customer's name and email are not Alice's to read (BOLA): only her own row.
        found = await client.get("/users/batch", params={"ids": ids}, headers=_bearer(await _login(client)))
        assert found.status_code == 200
        assert found.json() == [{"id": alice["id"], "name": "Alice", "email": "alice@example.com"}]
        admin = _bearer(await _login(client, "admin@msashop.local", "batch-admin-pass-1"))
        everyone = await client.get("/users/batch", params={"ids": ids}, headers=admin)
        assert sorted(u["email"] for u in everyone.json()) == ["alice@example.com", "bob@example.com"]


async def test_jwks_verifies_the_access_tokens_it_signs(user_api) -> None:
    client = user_api.client
    user = await _register(client)
    tokens = await _login(client)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert [k["alg"] for k in jwks["keys"]] == ["EdDSA"]
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    key = next(jwt.PyJWK.from_dict(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        tokens["access_token"], key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    assert claims["sub"] == user["id"] and claims["roles"] == ["customer"]
    assert claims["email"] == "alice@example.com" and claims["typ"] == "access" and claims["sid"]

    async def fetch() -> dict[str, Any]:
        return jwks

    principal = await TokenVerifier(fetch, InMemoryRevocationStore()).verify(tokens["access_token"])
    assert principal.user_id == user["id"]


async def test_signing_key_survives_a_restart(tmp_path: Path) -> None:
    async with _running(tmp_path) as user:
        client = user.client
        await _register(client)
        tokens = await _login(client)
        before = (await client.get("/.well-known/jwks.json")).json()
    assert (tmp_path / "keys" / "access-signing.pem").exists()
    async with _running(tmp_path) as user:
        client = user.client
        assert (await client.get("/.well-known/jwks.json")).json() == before
        assert (await client.get("/users/me", headers=_bearer(tokens))).status_code == 200


async def test_admin_is_seeded_with_the_configured_password(tmp_path: Path) -> None:
    async with _running(tmp_path, admin_password="first-admin-pass-1") as user:
        client = user.client
        tokens = await _login(client, "admin@msashop.local", "first-admin-pass-1")
        me = (await client.get("/users/me", headers=_bearer(tokens))).json()
        assert me["roles"] == ["admin"] and me["email"] == "admin@msashop.local"
    # A new password on the next start replaces the old one.
    async with _running(tmp_path, admin_password="second-admin-pass-2") as user:
        client = user.client
        old = await client.post(
            "/auth/login", json={"email": "admin@msashop.local", "password": "first-admin-pass-1"}
        )
        assert old.status_code == 401
        await _login(client, "admin@msashop.local", "second-admin-pass-2")
    # Without the setting nothing changes.
    async with _running(tmp_path) as user:
        client = user.client
        await _login(client, "admin@msashop.local", "second-admin-pass-2")


async def test_no_admin_without_the_setting(user_api) -> None:
    client = user_api.client
    response = await client.post(
        "/auth/login", json={"email": "admin@msashop.local", "password": "anything-1"}
    )
    assert response.status_code == 401


def test_production_refuses_the_auto_generated_signing_key(tmp_path: Path) -> None:
    real = {"env": "production", "data_dir": tmp_path}
    with pytest.raises(ValueError, match="signing_key_file"):
        UserSettings.load("user", **real)
    settings = UserSettings.load("user", signing_key_file=tmp_path / "k.pem", **real)
    assert settings.signing_key_path == tmp_path / "k.pem"
