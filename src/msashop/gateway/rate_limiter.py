"""Counting requests against their rate limits, in the store every gateway process shares.

The windows are the `limits` library's sliding window counter on Redis/Valkey (its own atomic
Lua scripts); the burst bucket is ours (token_bucket.py). One request costs one round trip for
the bucket and the windows' hits together, then one for the windows' counts (the headers): the
calls of a round run concurrently.

A request refused by one limit may still have been counted by the others, which ran at the same
time: counting all-or-nothing would need one script for every limit (and the sliding window is
the library's). `limits` itself counts a refused request against nothing (`hit` only takes
when there is room), so a client hammering a closed window does not push its reopening away.

The store down (or too slow): the limits of this process's memory take over (the same counters,
`MemoryStorage` and `MemoryBuckets`) until it answers again, checked at most every few seconds.
That fails open for well-behaved clients: a process's own count of a client's requests is never
above the shared count, so nobody is refused whom the shared limits would let through; and a
flood is still bounded, at worst to the limit times the number of gateway processes. Refusing
everything instead would turn a store outage into a shop outage; a 500 would be worse still.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis.asyncio as redis
import structlog
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.types import Message, Scope, Send

from msashop.chassis.auth import Principal
from msashop.chassis.limits_storage import limits_storage, redis_url
from msashop.gateway.config import GatewaySettings
from msashop.gateway.rate_limits import (
    ANONYMOUS,
    AUTHENTICATED,
    BURST_LIMIT,
    PREMIUM_TIER,
    Decision,
    Quota,
    RateLimitPolicy,
    RawHeader,
    RequestLimits,
    Window,
)
from msashop.gateway.token_bucket import Buckets, MemoryBuckets, RedisBuckets

log = structlog.get_logger()

# Where the X-RateLimit-* headers of this request wait for an error answer (forward.py).
SCOPE_KEY = "msashop.rate_limit_headers"
# A store slower than this is treated as down (each request would otherwise wait for it).
STORE_TIMEOUT_SECONDS = 0.5
STORE_ERRORS = (StorageError, RedisError, OSError, TimeoutError)

rate_limit_rejections_total = Counter(
    "rate_limit_rejections_total",
    "Requests answered 429 by the gateway, by tier and the limit that refused them",
    ["tier", "limit"],
)
rate_limit_store_errors_total = Counter(
    "rate_limit_store_errors_total",
    "Rate limit checks the shared store failed (counted in this process's memory instead)",
)


@lru_cache(maxsize=64)  # tiers x limits: a handful
def _rejections(tier: str, limit: str) -> Counter:
    return rate_limit_rejections_total.labels(tier, limit)


@dataclass
class Counters:
    """One place the counts live: the shared store, or this process's memory."""

    windows: SlidingWindowCounterRateLimiter
    buckets: Buckets
    clock: Callable[[], float] = time.time

    async def count(self, limits: RequestLimits) -> Decision:
        hits = asyncio.gather(*(self.windows.hit(w.item, *w.identifiers) for w in limits.windows))
        take, allowed = await asyncio.gather(self.buckets.take(limits.client), hits)
        stats = await asyncio.gather(
            *(self.windows.get_window_stats(w.item, *w.identifiers) for w in limits.windows)
        )
        now = self.clock()
        burst = Quota(
            BURST_LIMIT, take.capacity, take.remaining, take.reset_at, take.allowed, take.retry_after
        )
        quotas = [burst]
        for window, ok, stat in zip(limits.windows, allowed, stats, strict=True):
            quotas.append(_window_quota(window, bool(ok), stat.remaining, stat.reset_time, now))
        return Decision(limits.tier, tuple(quotas))


def _window_quota(window: Window, allowed: bool, remaining: int, reset_at: float, now: float) -> Quota:
    amount = window.item.amount
    if reset_at <= now:  # nothing counted yet: a whole window from now
        reset_at = now + window.item.get_expiry()
    return Quota(window.limit, amount, remaining, reset_at, allowed, max(0.0, reset_at - now))


def memory_counters(
    capacity: int, refill_per_second: float, clock: Callable[[], float] = time.time
) -> Callable[[], Counters]:
    """A maker of fresh counters in this process's memory."""

    def make() -> Counters:
        buckets = MemoryBuckets(capacity, refill_per_second, clock)
        return Counters(SlidingWindowCounterRateLimiter(MemoryStorage()), buckets, clock)

    return make


def store_counters(settings: GatewaySettings) -> tuple[Counters, redis.Redis]:
    """Counters in the shared store, and the client to close at shutdown."""
    prefix = settings.rate_limit_key_prefix
    storage = limits_storage(settings.store_url, prefix, **_client_options())
    client = redis.from_url(redis_url(settings.store_url), **_client_options())
    buckets = RedisBuckets(client, settings.burst_capacity, settings.burst_refill_per_second, prefix)
    return Counters(SlidingWindowCounterRateLimiter(storage), buckets), client


def _client_options() -> dict[str, Any]:
    # redis-py retries a failed command ten times with a growing backoff by default: a request
    # would wait seconds for a store that is gone. One quick retry (a pooled connection the
    # store closed), then the memory fallback.
    return {
        "socket_timeout": STORE_TIMEOUT_SECONDS,
        "socket_connect_timeout": STORE_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 1),
    }


class RateLimiter:
    def __init__(
        self,
        policy: RateLimitPolicy,
        local: Callable[[], Counters],
        shared: Counters | None = None,
        *,
        shared_client: redis.Redis | None = None,
        retry_store_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy, self.shared, self.shared_client = policy, shared, shared_client
        self._make_local = local
        self.local = local()
        self.retry_store_seconds = retry_store_seconds
        self.clock = clock
        self._store_down_until: float | None = None  # None: the store answered last time

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimiter | None:
        """None when `MSASHOP_RATE_LIMITS=off`; in memory alone without a store."""
        if not settings.rate_limits:
            return None
        policy = RateLimitPolicy.parse(
            {
                ANONYMOUS: settings.rate_limit_anonymous,
                AUTHENTICATED: settings.rate_limit_authenticated,
                PREMIUM_TIER: settings.rate_limit_premium,
            },
            settings.rate_limit_auth,
            settings.rate_limit_services,
        )
        shared, client = store_counters(settings) if settings.store_url else (None, None)
        return cls(
            policy,
            memory_counters(settings.burst_capacity, settings.burst_refill_per_second),
            shared,
            shared_client=client,
            retry_store_seconds=settings.rate_limit_store_retry_seconds,
        )

    async def close(self) -> None:
        if self.shared_client is not None:
            await self.shared_client.aclose()

    async def decide(self, limits: RequestLimits) -> Decision:
        if self.shared is not None and self._store_usable():
            try:
                decision = await self.shared.count(limits)
            except STORE_ERRORS as exc:
                self._store_failed(exc)
            else:
                self._store_answered()
                return decision
        return await self.local.count(limits)

    async def enforce(self, scope: Scope, service: str, principal: Principal | None, send: Send) -> Send:
        """Count the request: `send` adding its X-RateLimit-* headers to the answer, or RateLimited.

        The headers also wait in the scope, for an error answer made outside this `send`.
        """
        client = scope.get("client")
        limits = self.policy.limits_for(scope["path"], service, principal, client[0] if client else "unknown")
        if limits is None:
            return send
        decision = await self.decide(limits)
        headers = decision.headers()
        scope[SCOPE_KEY] = headers
        if not decision.allowed:
            _rejections(decision.tier, decision.binding.limit).inc()
            raise decision.refusal()
        return with_headers(send, headers)

    def _store_usable(self) -> bool:
        return self._store_down_until is None or self.clock() >= self._store_down_until

    def _store_failed(self, exc: BaseException) -> None:
        rate_limit_store_errors_total.inc()
        if self._store_down_until is None:  # once per outage, not once per request
            log.warning("rate_limit.store_unavailable", error=repr(exc), fallback="process memory")
        self._store_down_until = self.clock() + self.retry_store_seconds

    def _store_answered(self) -> None:
        if self._store_down_until is not None:
            log.info("rate_limit.store_back")
            self._store_down_until = None
            # What was counted here during the outage is not in the store; starting afresh
            # keeps the memory's counts below the shared ones for the next outage.
            self.local = self._make_local()


def with_headers(send: Send, headers: list[RawHeader]) -> Send:
    """`send` with `headers` added to the answer's start, unless the service answered with its
    own X-RateLimit-* (its limit refused the request: the stricter one of the moment)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = list(message.get("headers", []))
            if not any(name.lower().startswith(b"x-ratelimit-") for name, _ in present):
                message = {**message, "headers": present + headers}
        await send(message)

    return sending


def error_headers(scope: Scope) -> dict[str, str] | None:
    """The X-RateLimit-* headers (and Retry-After) for an error answer to this request."""
    headers: list[RawHeader] | None = scope.get(SCOPE_KEY)
    if not headers:
        return None
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
