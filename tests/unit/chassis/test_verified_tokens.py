"""A token checked once is not decoded again, yet answers exactly as a decode would."""

from __future__ import annotations

import time

import pytest

from msashop.chassis.auth import LEEWAY_SECONDS, TokenVerifier
from msashop.chassis.errors import Unauthorized
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.signing import SigningKey
from msashop.chassis.verified_tokens import VerifiedTokens


def verifier_for(key: SigningKey) -> tuple[TokenVerifier, InMemoryRevocationStore]:
    store = InMemoryRevocationStore()
    verifier = TokenVerifier(None, store)
    verifier.set_jwks(key.jwks())
    return verifier, store


async def test_a_repeat_is_a_hit_and_gives_the_same_principal() -> None:
    key = SigningKey.generate()
    verifier, _ = verifier_for(key)
    token, _ = key.access_token("u1", ("customer", "premium"))
    first = await verifier.verify(token)
    assert len(verifier._verified) == 1
    assert await verifier.verify(token) == first
    assert len(verifier._verified) == 1


async def test_a_token_revoked_after_its_first_check_is_refused() -> None:
    key = SigningKey.generate()
    verifier, store = verifier_for(key)
    token, claims = key.access_token("u1")
    await verifier.verify(token)
    await store.revoke(f"jti:{claims['jti']}", 60)
    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(token)


async def test_a_token_whose_key_left_the_set_is_refused() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    verifier, _ = verifier_for(old)
    token, _ = old.access_token("u1")
    await verifier.verify(token)
    verifier.set_jwks(new.jwks())
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(token)


async def test_a_cached_token_expires_like_any_other() -> None:
    key = SigningKey.generate()
    verifier, _ = verifier_for(key)
    token, _ = key.access_token("u1", ttl_seconds=1)
    await verifier.verify(token)
    entry = next(iter(verifier._verified._entries.values()))
    assert entry.expires == pytest.approx(time.time() + 1 + LEEWAY_SECONDS, abs=2)
    assert verifier._verified.get(token, "msashop", "access", now=entry.expires + 0.1) is None


async def test_an_access_token_cached_is_still_no_service_token() -> None:
    key = SigningKey.generate()
    verifier, _ = verifier_for(key)
    verifier.service = "order"
    token, _ = key.access_token("u1")
    await verifier.verify(token)
    with pytest.raises(Unauthorized):
        await verifier.verify_service(token)


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = VerifiedTokens(leeway_seconds=0, max_entries=3)
    later = time.time() + 60
    for n in range(5):
        cache.put(f"t{n}", "a", "access", {"exp": later, "nbf": 0}, "k")
    assert len(cache) == 3
    assert cache.get("t0", "a", "access") is None and cache.get("t4", "a", "access") is not None
