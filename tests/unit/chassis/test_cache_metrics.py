"""Cache hits and misses: counted for rates, and the hit rate of the last lookups as a gauge."""

from __future__ import annotations

from prometheus_client import REGISTRY

from msashop.chassis.cache_metrics import CacheStats


def _rate(name: str) -> float | None:
    return REGISTRY.get_sample_value("cache_hit_rate", {"cache_name": name})


def _lookups(name: str, result: str) -> float | None:
    return REGISTRY.get_sample_value("cache_lookups_total", {"cache_name": name, "result": result})


def test_the_hit_rate_is_over_the_last_lookups_and_the_counters_over_all() -> None:
    stats = CacheStats("probe-cache", window=4)
    for hit in (True, True, True, False):
        stats.record(hit=hit)
    assert _rate("probe-cache") == 0.75

    for _ in range(4):  # the cache starts missing: the rate follows within the window
        stats.record(hit=False)
    assert _rate("probe-cache") == 0.0
    stats.record(hit=True)
    assert _rate("probe-cache") == 0.25
    assert _lookups("probe-cache", "hit") == 4
    assert _lookups("probe-cache", "miss") == 5
