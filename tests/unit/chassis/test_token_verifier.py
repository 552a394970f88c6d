"""Every service verifies access tokens itself: only our EdDSA access tokens, unexpired, unrevoked."""

import time
from typing import Any

import jwt
import pytest

from msashop.chassis.auth import AUDIENCE, ISSUER, TokenVerifier
from msashop.chassis.errors import Unauthorized
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.signing import SigningKey


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def store() -> InMemoryRevocationStore:
    return InMemoryRevocationStore()


@pytest.fixture
def verifier(key: SigningKey, store: InMemoryRevocationStore) -> TokenVerifier:
    verifier = TokenVerifier(None, store)
    verifier.set_jwks(key.jwks())
    return verifier


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "roles": ["customer"],
        "email": "a@example.com",
        "typ": "access",
        "jti": "jti-1",
        "sid": "sid-1",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(changes)
    return base


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    return caught.value.code


async def test_valid_access_token_gives_the_principal(verifier: TokenVerifier, key: SigningKey) -> None:
    token, issued = key.access_token("user-7", ["customer", "admin"], email="u7@example.com")

    principal = await verifier.verify(token)

    assert principal.user_id == "user-7"
    assert principal.roles == ("customer", "admin")
    assert principal.is_admin
    assert principal.email == "u7@example.com"
    assert principal.claims["jti"] == issued["jti"]


async def test_expired_token_is_rejected_as_expired(verifier: TokenVerifier, key: SigningKey) -> None:
    token, _ = key.access_token("user-1", ttl_seconds=-60)

    assert await rejected(verifier, token) == "token_expired"


async def test_wrong_audience_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    assert await rejected(verifier, key.sign(claims(aud="another-platform"))) == "invalid_token"


async def test_wrong_issuer_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    assert await rejected(verifier, key.sign(claims(iss="someone-else"))) == "invalid_token"


async def test_missing_required_claim_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    incomplete = claims()
    del incomplete["jti"]

    assert await rejected(verifier, key.sign(incomplete)) == "invalid_token"


async def test_unsigned_alg_none_token_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    token = jwt.encode(claims(), None, algorithm="none", headers={"kid": key.kid})

    assert await rejected(verifier, token) == "invalid_token"


async def test_hs256_token_is_rejected_even_when_keyed_with_the_public_key(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    # The classic algorithm-confusion attack: HMAC with the published public key as secret.
    public_x = key.jwk()["x"].encode()
    token = jwt.encode(claims(), public_x, algorithm="HS256", headers={"kid": key.kid})

    assert await rejected(verifier, token) == "invalid_token"


async def test_token_from_an_unknown_key_is_rejected(verifier: TokenVerifier) -> None:
    stranger = SigningKey.generate()
    token, _ = stranger.access_token("user-1")

    assert await rejected(verifier, token) == "invalid_token"


async def test_token_with_a_forged_signature_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    stranger = SigningKey.generate()
    forged = jwt.encode(claims(sub="admin"), stranger._private, algorithm="EdDSA", headers={"kid": key.kid})

    assert await rejected(verifier, forged) == "invalid_token"


async def test_a_new_key_id_is_fetched_from_the_jwks(store: InMemoryRevocationStore) -> None:
    rotated = SigningKey.generate()
    fetches: list[int] = []

    async def fetch_jwks() -> dict[str, Any]:
        fetches.append(1)
        return rotated.jwks()

    verifier = TokenVerifier(fetch_jwks, store)
    token, _ = rotated.access_token("user-2")

    assert (await verifier.verify(token)).user_id == "user-2"
    assert (await verifier.verify(token)).user_id == "user-2"
    assert len(fetches) == 1


async def test_refresh_token_is_not_an_access_token(verifier: TokenVerifier, key: SigningKey) -> None:
    assert await rejected(verifier, key.sign(claims(typ="refresh"))) == "invalid_token"


async def test_malformed_token_is_rejected(verifier: TokenVerifier) -> None:
    assert await rejected(verifier, "not-a-jwt") == "invalid_token"


async def test_revoked_token_id_is_rejected(
    verifier: TokenVerifier, key: SigningKey, store: InMemoryRevocationStore
) -> None:
    token, issued = key.access_token("user-1")
    await store.revoke(f"jti:{issued['jti']}", 600)

    assert await rejected(verifier, token) == "token_revoked"


async def test_revoked_session_rejects_every_token_of_it(
    verifier: TokenVerifier, key: SigningKey, store: InMemoryRevocationStore
) -> None:
    first, _ = key.access_token("user-1", session_id="session-9")
    second, _ = key.access_token("user-1", session_id="session-9")
    other, _ = key.access_token("user-1", session_id="session-10")
    await store.revoke("sid:session-9", 600)

    assert await rejected(verifier, first) == "token_revoked"
    assert await rejected(verifier, second) == "token_revoked"
    assert (await verifier.verify(other)).user_id == "user-1"
