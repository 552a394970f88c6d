"""The burst limit: a token bucket per client, in the shared store or in this process.

A bucket holds up to `capacity` tokens and gains `refill_per_second` of them continuously; a
request takes one, and is refused when less than one is left. So a client may burst `capacity`
requests at once, then goes on at the refill rate (the hourly windows bound the total).

`RedisBuckets` keeps the buckets in Redis/Valkey, refilled and taken in one Lua script, so every
gateway process draws from the same bucket and two concurrent requests cannot both take the last
token. `MemoryBuckets` is the embedded fallback with the same arithmetic (`refill_and_take`, which
the script mirrors line for line): when the gateway runs without a store, and while the store is
unreachable (see rate_limiter.py).

The time comes from the caller (the gateway's clock, passed to the script), not from the store's
`TIME`: the two implementations then take the same inputs, and a test can drive both with a fake
clock. Gateways run with synchronised clocks; one that is off by a second refills one second's
worth early or late, never a negative amount (elapsed time below zero counts as zero).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

# KEYS[1] the bucket (a hash: tokens, ts); ARGV: capacity, refill per second, now (seconds).
# Returns {1 if a token was taken else 0, the tokens left as a string (Lua numbers come back
# from Redis as integers, which would drop the fraction)}. The key expires once a full refill
# would have filled it anyway: an idle client's bucket costs no memory.
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
stamp = math.max(now, stamp)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {taken, string.format('%.17g', tokens)}
"""


@dataclass(frozen=True)
class Take:
    """One request's draw from a bucket."""

    allowed: bool
    tokens: float  # left after this request
    capacity: int
    refill_per_second: float
    now: float

    @property
    def remaining(self) -> int:
        return int(self.tokens)

    @property
    def retry_after(self) -> float:
        """Seconds until the next token (0 when one is there now)."""
        return max(0.0, (1 - self.tokens) / self.refill_per_second)

    @property
    def reset_at(self) -> float:
        """When the bucket is full again (Unix time)."""
        return self.now + (self.capacity - self.tokens) / self.refill_per_second


def refill_and_take(
    tokens: float | None, stamp: float | None, now: float, capacity: int, rate: float
) -> tuple[bool, float, float]:
    """(taken, tokens left, new stamp) for a bucket last seen at `stamp` with `tokens` (None: new, full)."""
    if tokens is None or stamp is None:
        tokens, stamp = float(capacity), now
    tokens = min(float(capacity), tokens + max(0.0, now - stamp) * rate)
    taken = tokens >= 1
    if taken:
        tokens -= 1
    return taken, tokens, max(now, stamp)


class Buckets(Protocol):
    capacity: int
    refill_per_second: float

    async def take(self, key: str) -> Take: ...


class MemoryBuckets:
    """This process's buckets (the embedded fallback)."""

    # Past this many buckets, the ones a full refill has topped up are dropped (they are the same
    # as no bucket), so a spray of client addresses cannot grow the dict for ever.
    PRUNE_AT = 10_000

    def __init__(
        self, capacity: int, refill_per_second: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.capacity, self.refill_per_second, self.clock = capacity, refill_per_second, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str) -> Take:
        now = self.clock()
        tokens, stamp = self._buckets.get(key, (None, None))
        taken, left, stamp = refill_and_take(tokens, stamp, now, self.capacity, self.refill_per_second)
        if len(self._buckets) >= self.PRUNE_AT:
            self._prune(now)
        self._buckets[key] = (left, stamp)
        return Take(taken, left, self.capacity, self.refill_per_second, now)

    def clear(self) -> None:
        self._buckets.clear()

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


class RedisBuckets:
    """The buckets every gateway process shares, in Redis/Valkey (one script call per request)."""

    def __init__(
        self,
        client: redis.Redis,
        capacity: int,
        refill_per_second: float,
        key_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity, self.refill_per_second, self.clock = capacity, refill_per_second, clock
        self.key_prefix = key_prefix
        # EVALSHA, and the script itself once after a NOSCRIPT (a restarted store).
        self._script = client.register_script(TAKE_SCRIPT)

    async def take(self, key: str) -> Take:
        now = self.clock()
        args: list[str | int] = [self.capacity, repr(float(self.refill_per_second)), repr(now)]
        taken, left = await self._script(keys=[f"{self.key_prefix}:bucket:{key}"], args=args)
        return Take(bool(taken), float(left), self.capacity, self.refill_per_second, now)
