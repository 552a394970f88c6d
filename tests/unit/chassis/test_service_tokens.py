"""Service tokens: a token for one service is refused by every other, a user token is never a
service token (nor the reverse); the caller's provider caches, refreshes early, fetches once for
many, and rides out an issuer outage on the token in hand."""

from __future__ import annotations

import asyncio
import time

import pytest

from msashop.chassis.auth import ISSUER, SERVICE, TokenVerifier, require_roles
from msashop.chassis.errors import Unauthorized
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.service_tokens import IssuedToken, ServiceTokens, read_secret
from msashop.chassis.signing import SigningKey


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def store() -> InMemoryRevocationStore:
    return InMemoryRevocationStore()


def verifier_for(service: str, key: SigningKey, store: InMemoryRevocationStore) -> TokenVerifier:
    verifier = TokenVerifier(None, store, service=service)
    verifier.set_jwks(key.jwks())
    return verifier


async def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify_service(token)
    return caught.value.message


async def test_a_service_token_names_its_caller_to_its_audience(key: SigningKey, store) -> None:
    token, issued = key.service_token("order", "user")
    caller = await verifier_for("user", key, store).verify_service(token)
    assert caller.name == "order" and caller.claims["jti"] == issued["jti"]
    assert issued["iss"] == ISSUER and issued["typ"] == SERVICE and issued["exp"] - issued["iat"] == 300


async def test_a_token_for_another_service_is_refused(key: SigningKey, store) -> None:
    token, _ = key.service_token("order", "product")
    assert "invalid token" in await refusal(verifier_for("user", key, store), token)


async def test_a_user_access_token_is_not_a_service_token(key: SigningKey, store) -> None:
    access, _ = key.access_token("u1", ["admin"])
    assert await refusal(verifier_for("user", key, store), access)
    # Even one whose audience happened to be the service's name: its type is still "access".
    forged = key.sign({**key.service_token("order", "user")[1], "typ": "access"})
    assert "not a service token" in await refusal(verifier_for("user", key, store), forged)


async def test_a_service_token_is_not_a_user_access_token(key: SigningKey, store) -> None:
    token, _ = key.service_token("gateway", "order")
    with pytest.raises(Unauthorized):
        await verifier_for("order", key, store).verify(token)
    # Nor one addressed to the users' audience: its type is "service".
    as_user = key.sign({**key.service_token("gateway", "msashop")[1], "roles": ["admin"]})
    with pytest.raises(Unauthorized, match="not an access token"):
        await verifier_for("order", key, store).verify(as_user)


async def test_an_expired_service_token_is_refused(key: SigningKey, store) -> None:
    _, claims = key.service_token("order", "user")
    past = int(time.time()) - 3600
    expired = key.sign({**claims, "iat": past, "nbf": past, "exp": past + 300})
    assert "expired" in await refusal(verifier_for("user", key, store), expired)


async def test_a_revoked_or_foreign_service_token_is_refused(key: SigningKey, store) -> None:
    token, claims = key.service_token("order", "user")
    await store.revoke(f"jti:{claims['jti']}", 60)
    assert "revoked" in await refusal(verifier_for("user", key, store), token)
    stranger, _ = SigningKey.generate().service_token("order", "user")
    assert "unknown key" in await refusal(verifier_for("user", key, store), stranger)


async def test_a_process_without_a_name_accepts_no_service_token(key: SigningKey, store) -> None:
    token, _ = key.service_token("order", "")
    assert "accepts no service tokens" in await refusal(verifier_for("", key, store), token)


def test_require_roles_takes_known_roles_only() -> None:
    require_roles("premium", "admin")
    with pytest.raises(ValueError, match="known roles"):
        require_roles("superuser")
    with pytest.raises(ValueError):
        require_roles()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """A fake token endpoint: counts its calls, can be made to fail or to answer slowly."""

    def __init__(self, expires_in: float = 300) -> None:
        self.calls: list[str] = []
        self.expires_in = expires_in
        self.down = False
        self.delay = 0.0

    async def __call__(self, audience: str) -> IssuedToken:
        self.calls.append(audience)
        await asyncio.sleep(self.delay)
        if self.down:
            raise ConnectionError("user service unavailable")
        return IssuedToken(f"{audience}-{len(self.calls)}", self.expires_in)


async def test_a_token_is_cached_per_audience_and_refreshed_30_s_before_it_expires() -> None:
    clock, issuer = Clock(), Issuer()
    tokens = ServiceTokens(issuer, clock=clock)
    assert await tokens.get("user") == "user-1"
    assert await tokens.get("product") == "product-2"
    clock.now += 269  # 31 s left: still the same token
    assert await tokens.get("user") == "user-1" and issuer.calls == ["user", "product"]
    clock.now += 2  # 29 s left: time for a new one
    assert await tokens.get("user") == "user-3"


async def test_concurrent_calls_share_one_fetch() -> None:
    issuer = Issuer()
    issuer.delay = 0.05
    tokens = ServiceTokens(issuer)
    got = await asyncio.gather(*(tokens.get("order") for _ in range(20)))
    assert set(got) == {"order-1"} and issuer.calls == ["order"]


async def test_an_issuer_outage_keeps_the_valid_token_then_spaces_its_retries() -> None:
    clock, issuer = Clock(), Issuer()
    tokens = ServiceTokens(issuer, clock=clock, retry_after_failure=5)
    assert await tokens.get("user") == "user-1"
    issuer.down = True
    clock.now += 280  # refresh due, issuer down: the old token still has 20 s
    assert await tokens.get("user") == "user-1"
    assert await tokens.get("user") == "user-1" and len(issuer.calls) == 2  # no retry within 5 s
    clock.now += 25  # expired, still down: no token (the callee decides), no hammering
    assert await tokens.get("user") is None and len(issuer.calls) == 3
    assert await tokens.get("user") is None and len(issuer.calls) == 3
    issuer.down = False
    clock.now += 5
    assert await tokens.get("user") == "user-4"


def test_a_secret_is_given_as_text_or_read_from_its_file(tmp_path) -> None:
    path = tmp_path / "order.secret"
    assert read_secret(None, path) is None
    path.write_text("s3cret\n")
    assert read_secret(None, path) == "s3cret"
    assert read_secret("given", path) == "given"
