"""Signing-key rotation without downtime: old tokens verify until their key is retired, new ones
carry the new kid, verifiers elsewhere pick the new key up without a restart, and production
rotates only to keys it was given (files or the environment), never to one it made up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from msashop.chassis.auth import TokenVerifier
from msashop.chassis.errors import Unauthorized
from msashop.chassis.signing import SigningKey
from msashop.services.user.db import signing_keys
from msashop.supervisor import client_secrets
from tests.security.conftest import admin_headers, bearer, register, tokens, user_service
from tests.service_harness import ServiceHarness


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def jwks_kids(user: ServiceHarness) -> list[str]:
    return [k["kid"] for k in (await user.client.get("/.well-known/jwks.json")).json()["keys"]]


def verifier_of(user: ServiceHarness) -> TokenVerifier:
    """What the gateway and every other service run: the JWKS over HTTP, the shared store."""

    async def fetch() -> dict[str, Any]:
        return dict((await user.client.get("/.well-known/jwks.json")).json())

    return TokenVerifier(fetch, user.service.store, min_refetch_seconds=0)


async def rotate(user: ServiceHarness) -> Any:
    response = await user.client.post("/admin/keys/rotate", headers=await admin_headers(user.client))
    assert response.status_code == 200, response.text
    return response.json()


async def test_after_a_rotation_old_tokens_verify_and_new_ones_carry_the_new_kid(
    user_api: ServiceHarness,
) -> None:
    client = user_api.client
    await register(client)
    old = (await tokens(client))["access_token"]
    elsewhere = verifier_of(user_api)
    await elsewhere.verify(old)  # another service has cached the JWKS with the old key only
    old_kid = kid_of(old)

    rotation = await rotate(user_api)
    new = (await tokens(client))["access_token"]

    assert rotation["current"] == kid_of(new) != old_kid
    assert await jwks_kids(user_api) == [kid_of(new), old_kid]
    states = {k["kid"]: k["state"] for k in rotation["keys"]}
    assert states == {kid_of(new): "current", old_kid: "previous"}
    for token in (old, new):
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 200
        assert (await elsewhere.verify(token)).user_id  # the new kid: refetched, no restart


async def test_a_retired_key_stops_verifying_at_once_everywhere(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    old = (await tokens(client))["access_token"]
    elsewhere = verifier_of(user_api)
    await elsewhere.verify(old)
    await rotate(user_api)
    new = (await tokens(client))["access_token"]

    retired = await client.post(f"/admin/keys/{kid_of(old)}/retire", headers=await admin_headers(client))

    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    assert await jwks_kids(user_api) == [kid_of(new)]
    me = await client.get("/users/me", headers=bearer(old))
    assert me.status_code == 401
    # The other service still holds the old key in its cached JWKS: the shared store says no.
    with pytest.raises(Unauthorized) as refused:
        await elsewhere.verify(old)
    assert refused.value.code == "token_revoked"
    assert (await client.get("/users/me", headers=bearer(new))).status_code == 200


async def test_a_previous_key_leaves_the_jwks_when_its_tokens_have_expired(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    old = (await tokens(client))["access_token"]
    await rotate(user_api)
    keyring = user_api.service.app.state.keyring
    # As if the grace (one token lifetime, the leeway and a reload) had passed since the rotation.
    async with user_api.service.unit_of_work() as uow:
        await uow.session.execute(
            sa.update(signing_keys)
            .where(signing_keys.c.kid == kid_of(old))
            .values(superseded_at=datetime.now(UTC) - keyring.grace - timedelta(seconds=1))
        )
        await uow.commit()
    await keyring.reload()

    assert kid_of(old) not in await jwks_kids(user_api)
    with pytest.raises(Unauthorized):
        await verifier_of(user_api).verify(old)
    listing = (await client.get("/admin/keys", headers=await admin_headers(client))).json()
    assert {k["kid"]: k["state"] for k in listing}[kid_of(old)] == "retired"


async def test_the_current_key_cannot_be_retired_and_an_unknown_one_is_404(user_api: ServiceHarness) -> None:
    client = user_api.client
    headers = await admin_headers(client)
    current = (await jwks_kids(user_api))[0]
    refused = await client.post(f"/admin/keys/{current}/retire", headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "signing_key_current"
    missing = await client.post("/admin/keys/no-such-kid/retire", headers=headers)
    assert missing.status_code == 404


async def test_only_an_admin_lists_rotates_or_retires(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    customer = bearer((await tokens(client))["access_token"])
    for method, path in (
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys/rotate"),
        ("POST", "/admin/keys/x/retire"),
    ):
        assert (await client.request(method, path)).status_code == 401
        assert (await client.request(method, path, headers=customer)).status_code == 403


async def test_the_jwks_holds_public_keys_only(user_api: ServiceHarness) -> None:
    await rotate(user_api)
    for jwk in (await user_api.client.get("/.well-known/jwks.json")).json()["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}


async def test_a_rotation_survives_a_restart(tmp_path: Path) -> None:
    async with user_service(tmp_path) as user:
        await register(user.client)
        old = (await tokens(user.client))["access_token"]
        current = (await rotate(user))["current"]
        before = await jwks_kids(user)
    async with user_service(tmp_path) as user:
        assert await jwks_kids(user) == before
        assert kid_of((await tokens(user.client))["access_token"]) == current
        assert (await user.client.get("/users/me", headers=bearer(old))).status_code == 200


async def test_a_replica_signs_with_the_key_another_replica_rotated_to(tmp_path: Path) -> None:
    async with user_service(tmp_path) as a, user_service(tmp_path) as b:
        await register(a.client)
        current = (await rotate(a))["current"]
        from_a = (await tokens(a.client))["access_token"]
        # b has not reread the ring yet, but meets the new kid and looks it up.
        assert (await b.client.get("/users/me", headers=bearer(from_a))).status_code == 200
        await b.service.app.state.keyring.reload()  # what its periodic reload does
        assert kid_of((await tokens(b.client))["access_token"]) == current


def production(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    clients = client_secrets.ensure(tmp_path / "platform", ["user", "order"])  # production needs them
    return {"env": "production", "admin_password": "operator-pass-9876", "clients_file": clients, **settings}


async def test_production_rotates_only_to_a_key_it_was_given(tmp_path: Path) -> None:
    key_file, key_dir = tmp_path / "secrets" / "signing.pem", tmp_path / "secrets" / "signing.d"
    SigningKey.generate().save(key_file)
    key_dir.mkdir()
    async with user_service(
        tmp_path, **production(tmp_path, signing_key_file=key_file, signing_keys_dir=key_dir)
    ) as user:
        first = (await jwks_kids(user))[0]
        refused = await user.client.post("/admin/keys/rotate", headers=await admin_headers(user.client))
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_new_signing_key"
        assert await jwks_kids(user) == [first] and not list(key_dir.iterdir())

        provided = SigningKey.generate()
        provided.save(key_dir / "next.pem")  # the operator mounts the next key, then rotates
        assert (await rotate(user))["current"] == provided.kid
        assert await jwks_kids(user) == [provided.kid, first]


async def test_production_takes_keys_from_the_environment(tmp_path: Path) -> None:
    one, two = SigningKey.generate(), SigningKey.generate()
    pem = (one.pem() + two.pem()).decode()
    async with user_service(tmp_path, **production(tmp_path, signing_keys_pem=pem)) as user:
        first = (await jwks_kids(user))[0]
        assert first in (one.kid, two.kid)
        assert (await rotate(user))["current"] == ({one.kid, two.kid} - {first}).pop()
        assert not (tmp_path / "keys").exists()  # nothing was written to disk


def test_production_refuses_to_start_without_given_keys(tmp_path: Path) -> None:
    from msashop.services.user.config import UserSettings

    with pytest.raises(ValueError, match="signing_key_file"):
        UserSettings.load("user", env="production", data_dir=tmp_path)
    for given in ({"signing_keys_dir": tmp_path}, {"signing_keys_pem": "x"}):
        assert UserSettings.load("user", env="production", data_dir=tmp_path, **given)


async def test_a_new_kid_just_after_a_jwks_fetch_waits_for_the_next_fetch_rather_than_failing() -> None:
    from msashop.chassis.revocation import InMemoryRevocationStore

    old, new = SigningKey.generate(), SigningKey.generate()
    published = {"keys": [old.jwk()]}

    async def fetch() -> dict[str, Any]:
        return published

    verifier = TokenVerifier(fetch, InMemoryRevocationStore(), min_refetch_seconds=0.3)
    assert (await verifier.verify(old.access_token("u1")[0])).user_id == "u1"  # fetched just now
    published = {"keys": [new.jwk(), old.jwk()]}  # the rotation, a moment later

    assert (await verifier.verify(new.access_token("u2")[0])).user_id == "u2"
