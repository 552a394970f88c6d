"""Every token check records a JWKS cache lookup: the guide's cache_hit_rate{cache_name="jwks"}."""

from prometheus_client import REGISTRY

from msashop.chassis.auth import TokenVerifier
from msashop.chassis.errors import AppError
from msashop.chassis.revocation import InMemoryRevocationStore
from msashop.chassis.signing import SigningKey


def _lookups(result: str) -> float:
    return REGISTRY.get_sample_value("cache_lookups_total", {"cache_name": "jwks", "result": result}) or 0.0


async def test_a_known_kid_is_a_hit_an_unknown_one_a_miss() -> None:
    key = SigningKey.generate()
    verifier = TokenVerifier(None, InMemoryRevocationStore())
    verifier.set_jwks(key.jwks())
    hits, misses = _lookups("hit"), _lookups("miss")
    await verifier._key(key.kid)
    try:
        await verifier._key("someone-else")
    except AppError:
        pass
    assert (_lookups("hit") - hits, _lookups("miss") - misses) == (1, 1)
    assert REGISTRY.get_sample_value("cache_hit_rate", {"cache_name": "jwks"}) is not None
