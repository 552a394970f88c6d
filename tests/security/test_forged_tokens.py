"""Forged and misused tokens, tried against the user service (which verifies every token itself)
and against a verifier fed by its JWKS (what the gateway and every other service run). Each must
be a 401, never a 500 and never a caller."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from msashop.chassis.auth import AUDIENCE, ISSUER, TokenVerifier
from msashop.chassis.errors import Unauthorized
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.signing import SigningKey
from tests.security.conftest import bearer, register, tokens
from tests.service_harness import ServiceHarness


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "email": "alice@example.com",
        "roles": ["customer", "admin"],
        "typ": "access",
        "jti": "forged-jti",
        "sid": "forged-sid",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def hmac_signed(alg: str, secret: bytes, kid: str, payload: dict[str, Any]) -> str:
    """HMAC by hand: PyJWT refuses to use a PEM public key as an HMAC secret, an attacker would not."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64(json.dumps({'alg': alg, 'typ': 'JWT', 'kid': kid}).encode())}." + b64(
        json.dumps(payload).encode()
    )
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def ed_signed(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """EdDSA by hand, for headers PyJWT will not write (a kid that is not a string)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(key._private.sign(signing_input.encode()))}"


def public_pem(key: SigningKey) -> bytes:
    return key._private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tampered(real: str, **changes: Any) -> str:
    header, payload, signature = real.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    return ".".join([header, b64(json.dumps(data).encode()), signature])


Forge = Callable[[SigningKey, str, str], str]  # (the service's key, a user id, a real token) -> token
stranger = SigningKey.generate()

FORGERIES: dict[str, Forge] = {
    "alg none": lambda k, u, _: jwt.encode(claims(u), None, algorithm="none", headers={"kid": k.kid}),
    "alg None, hand made": lambda k, u, _: unsigned({"alg": "None", "kid": k.kid}, claims(u)),
    "alg NONE with the real signature": lambda k, u, real: unsigned(
        {"alg": "NONE", "kid": k.kid}, claims(u), base64.urlsafe_b64decode(real.split(".")[2] + "==")
    ),
    "HS256 keyed with the public JWK x": lambda k, u, _: hmac_signed(
        "HS256", k.jwk()["x"].encode(), k.kid, claims(u)
    ),
    "HS256 keyed with the public key PEM": lambda k, u, _: hmac_signed(
        "HS256", public_pem(k), k.kid, claims(u)
    ),
    "HS384 keyed with the public key PEM": lambda k, u, _: hmac_signed(
        "HS384", public_pem(k), k.kid, claims(u)
    ),
    "HS512 keyed with the raw public key": lambda k, u, _: hmac_signed(
        "HS512", base64.urlsafe_b64decode(k.jwk()["x"] + "="), k.kid, claims(u)
    ),
    "RS256 header on an EdDSA signature": lambda k, u, real: ".".join(
        [b64(json.dumps({"alg": "RS256", "kid": k.kid}).encode()), *real.split(".")[1:]]
    ),
    "tampered roles (admin added)": lambda k, u, real: tampered(real, roles=["customer", "admin"]),
    "tampered subject": lambda k, u, real: tampered(real, sub="someone-else"),
    "tampered expiry": lambda k, u, real: tampered(real, exp=int(time.time()) + 10**6),
    "signature stripped": lambda k, u, real: real.rsplit(".", 1)[0] + ".",
    "signature of another token": lambda k, u, real: tampered(real, jti="other"),
    "expired beyond the leeway": lambda k, u, _: k.sign(claims(u, exp=int(time.time()) - 45)),
    "not yet valid (nbf) beyond the leeway": lambda k, u, _: k.sign(claims(u, nbf=int(time.time()) + 120)),
    "issued in the future (iat)": lambda k, u, _: k.sign(claims(u, iat=int(time.time()) + 120)),
    "wrong audience": lambda k, u, _: k.sign(claims(u, aud="another-platform")),
    "our audience among others": lambda k, u, _: k.sign(claims(u, aud=[AUDIENCE, "another-platform"])),
    "wrong issuer": lambda k, u, _: k.sign(claims(u, iss="https://evil.example")),
    "no expiry": lambda k, u, _: k.sign(claims(u, exp=None)),
    "no nbf": lambda k, u, _: k.sign(claims(u, nbf=None)),
    "no jti": lambda k, u, _: k.sign(claims(u, jti=None)),
    "unknown kid, its own key": lambda k, u, _: stranger.sign(claims(u)),
    "our kid, another key": lambda k, u, _: jwt.encode(
        claims(u), stranger._private, algorithm="EdDSA", headers={"kid": k.kid}
    ),
    "no kid": lambda k, u, _: jwt.encode(claims(u), k._private, algorithm="EdDSA"),
    "kid is a number": lambda k, u, _: ed_signed(k, {"alg": "EdDSA", "kid": 7}, claims(u)),
    "kid is an object": lambda k, u, _: ed_signed(k, {"alg": "EdDSA", "kid": {"$ne": ""}}, claims(u)),
    "kid of 10,000 characters": lambda k, u, _: jwt.encode(
        claims(u), k._private, algorithm="EdDSA", headers={"kid": "k" * 10_000}
    ),
    "attacker key embedded as jwk": lambda k, u, _: jwt.encode(
        claims(u), stranger._private, algorithm="EdDSA", headers={"kid": k.kid, "jwk": stranger.jwk()}
    ),
    "attacker JWKS url (jku)": lambda k, u, _: jwt.encode(
        claims(u), stranger._private, algorithm="EdDSA", headers={"kid": stranger.kid, "jku": "http://evil/"}
    ),
    "typ refresh, signed by the real key": lambda k, u, _: k.sign(claims(u, typ="refresh")),
    "no typ, signed by the real key": lambda k, u, _: k.sign(claims(u, typ=None)),
    "typ id, signed by the real key": lambda k, u, _: k.sign(claims(u, typ="id")),
    "not a JWT": lambda k, u, _: "not-a-token",
    "two segments": lambda k, u, real: ".".join(real.split(".")[:2]),
    "garbage header": lambda k, u, real: "e30x." + real.split(".", 1)[1],
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_a_forged_token_is_refused_by_the_service_and_by_a_jwks_verifier(
    user_api: ServiceHarness, name: str
) -> None:
    client = user_api.client
    user = await register(client)
    real = (await tokens(client))["access_token"]
    forged = FORGERIES[name](user_api.service.app.state.token_issuer.key, user["id"], real)

    me = await client.get("/users/me", headers=bearer(forged))
    assert me.status_code == 401, (name, me.status_code, me.text)
    assert me.json()["error"]["code"] in ("invalid_token", "token_expired")

    jwks = (await client.get("/.well-known/jwks.json")).json()

    async def fetch() -> dict[str, Any]:
        return dict(jwks)

    with pytest.raises(Unauthorized):
        await TokenVerifier(fetch, InMemoryRevocationStore()).verify(forged)
    # The real token still works: nothing above broke the service's state.
    assert (await client.get("/users/me", headers=bearer(real))).status_code == 200


async def test_clock_skew_within_the_leeway_is_accepted(user_api: ServiceHarness) -> None:
    client = user_api.client
    user = await register(client)
    key = user_api.service.app.state.token_issuer.key
    at = int(time.time())
    for skewed in (claims(user["id"], exp=at - 10), claims(user["id"], nbf=at + 10, iat=at + 10)):
        assert (await client.get("/users/me", headers=bearer(key.sign(skewed)))).status_code == 200


async def test_a_refresh_token_is_never_an_access_token_and_the_other_way_round(
    user_api: ServiceHarness,
) -> None:
    client = user_api.client
    await register(client)
    pair = await tokens(client)
    as_access = await client.get("/users/me", headers=bearer(pair["refresh_token"]))
    assert as_access.status_code == 401 and as_access.json()["error"]["code"] == "invalid_token"
    as_refresh = await client.post("/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert as_refresh.status_code == 422  # longer than any refresh token: refused before a lookup
    short_jwt = pair["access_token"][:200]
    as_refresh = await client.post("/auth/refresh", json={"refresh_token": short_jwt})
    assert as_refresh.status_code == 401
    assert as_refresh.json()["error"]["code"] == "invalid_refresh_token"
    # Both still work for what they are.
    assert (await client.get("/users/me", headers=bearer(pair["access_token"]))).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).status_code == 200


async def test_made_up_key_ids_cost_at_most_one_jwks_fetch_per_interval() -> None:
    fetches: list[float] = []

    async def fetch() -> dict[str, Any]:
        fetches.append(time.monotonic())
        return stranger.jwks()

    verifier = TokenVerifier(fetch, InMemoryRevocationStore(), min_refetch_seconds=0.5)

    async def attempt(n: int) -> None:
        token = jwt.encode(claims("u"), stranger._private, algorithm="EdDSA", headers={"kid": f"made-up-{n}"})
        with pytest.raises(Unauthorized):
            await verifier.verify(token)

    started = time.monotonic()
    await asyncio.gather(*(attempt(n) for n in range(200)))
    await asyncio.gather(*(attempt(n) for n in range(200, 400)))
    # Two waves: one fetch each at most, half a second apart; nobody waited much longer.
    assert len(fetches) <= 2
    assert time.monotonic() - started < 2.0
