"""The knobs of the service client's resilience: retries, circuit breaker, bulkhead, ejection.

One frozen value, built from a service's settings (`ClientPolicy.from_settings`) or with the
defaults, which are the guide's: 3 attempts, waits capped at 10 s, a breaker over the last 20
calls that opens at 50 % failures once 10 calls were seen, 30 s open, 3 trial calls, 20
concurrent calls per upstream, an instance that failed skipped for 10 s (doubling, up to 2 min).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from msashop.chassis.settings import ServiceSettings


@dataclass(frozen=True)
class ClientPolicy:
    # Attempts of one idempotent call, the first included (1: no retry).
    max_attempts: int = 3
    # The first backoff's upper bound; each retry doubles it (full jitter), up to max_wait.
    retry_initial_wait: float = 0.1
    # No single wait is longer, Retry-After included.
    retry_max_wait: float = 10.0
    breaker_window: int = 20
    breaker_min_calls: int = 10
    breaker_failure_rate: float = 0.5
    breaker_reset_seconds: float = 30.0
    breaker_trial_calls: int = 3
    bulkhead_max_concurrent: int = 100
    ejection_base_seconds: float = 10.0
    ejection_max_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ClientPolicy:
        return cls(
            max_attempts=settings.call_max_attempts,
            retry_initial_wait=settings.call_retry_initial_wait_seconds,
            retry_max_wait=settings.call_retry_max_wait_seconds,
            breaker_window=settings.breaker_window_calls,
            breaker_min_calls=settings.breaker_min_calls,
            breaker_failure_rate=settings.breaker_failure_rate,
            breaker_reset_seconds=settings.breaker_reset_seconds,
            breaker_trial_calls=settings.breaker_trial_calls,
            bulkhead_max_concurrent=settings.bulkhead_max_concurrent_calls,
            ejection_base_seconds=settings.ejection_base_seconds,
            ejection_max_seconds=settings.ejection_max_seconds,
        )
