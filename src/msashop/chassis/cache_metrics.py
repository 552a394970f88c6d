"""Cache hits and misses: `cache_lookups_total{cache_name,result}` for rates over any window,
and the guide's `cache_hit_rate{cache_name}`, the share of hits among the last lookups.

The hit rate is over the last `window` lookups rather than since the start, so it moves when
the cache starts missing (a key rotation, a restarted user service) instead of staying near 1.
Only caches that exist are reported: the JWKS keys every token check reads (chassis/auth.py).
"""

from __future__ import annotations

import threading
from collections import deque

from prometheus_client import Counter, Gauge

cache_lookups_total = Counter(
    "cache_lookups_total", "Cache lookups by result (hit, miss)", ["cache_name", "result"]
)
cache_hit_rate = Gauge("cache_hit_rate", "Share of hits among the last lookups (0..1)", ["cache_name"])

DEFAULT_WINDOW = 1000


class CacheStats:
    """Counts one cache's lookups; `record` is cheap enough for every request."""

    def __init__(self, name: str, *, window: int = DEFAULT_WINDOW) -> None:
        self.name = name
        self._recent: deque[bool] = deque(maxlen=window)
        self._hits_in_window = 0
        self._lock = threading.Lock()
        self._hits = cache_lookups_total.labels(name, "hit")
        self._misses = cache_lookups_total.labels(name, "miss")
        self._rate = cache_hit_rate.labels(name)

    def record(self, *, hit: bool) -> None:
        (self._hits if hit else self._misses).inc()
        with self._lock:
            if len(self._recent) == self._recent.maxlen and self._recent[0]:
                self._hits_in_window -= 1
            self._recent.append(hit)
            self._hits_in_window += hit
            rate = self._hits_in_window / len(self._recent)
        self._rate.set(rate)


# The verifier's signing keys (JWKS), fetched from the user service and kept `refresh_after`.
jwks_cache = CacheStats("jwks")
