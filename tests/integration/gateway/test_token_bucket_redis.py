"""The burst bucket's Lua script on the machine's Redis, and the in-process fallback, run through
one suite: the two must answer the same requests the same way (a fake clock drives both)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from msashop.gateway.token_bucket import Buckets, MemoryBuckets, RedisBuckets
from tests.conftest import unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"

MakeBuckets = Callable[[int, float], Buckets]


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_000_000.25  # a real Unix time: the script sees what a gateway would send

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _redis() -> redis.Redis:
    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        unavailable(f"Redis is not reachable at 127.0.0.1:6379: {exc}")
    return client


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = await _redis()
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make_buckets(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[MakeBuckets]:
    if request.param == "memory":
        yield lambda capacity, rate: MemoryBuckets(capacity, rate, clock)
        return
    client = await _redis()
    prefix = f"msashop-test-{uuid.uuid4().hex}"
    yield lambda capacity, rate: RedisBuckets(client, capacity, rate, prefix, clock)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_a_burst_of_capacity_passes_then_one_more_is_refused(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(100, 10.0)
    takes = [await buckets.take("ip:a") for _ in range(101)]
    assert [t.allowed for t in takes] == [True] * 100 + [False]
    assert [t.remaining for t in takes[:3]] == [99, 98, 97]
    assert takes[99].remaining == 0
    assert takes[100].retry_after == pytest.approx(0.1)


async def test_tokens_drip_back_at_the_refill_rate(make_buckets: MakeBuckets, clock: Clock) -> None:
    buckets = make_buckets(10, 4.0)
    for _ in range(10):
        assert (await buckets.take("ip:a")).allowed
    clock.now += 0.125  # half a token (steps a float holds exactly, even added to a Unix time)
    refused = await buckets.take("ip:a")
    assert not refused.allowed and refused.tokens == pytest.approx(0.5)
    assert refused.retry_after == pytest.approx(0.125)
    clock.now += 0.625  # 0.5 + 2.5: three requests' worth
    assert [(await buckets.take("ip:a")).allowed for _ in range(4)] == [True, True, True, False]


async def test_a_bucket_refills_to_its_capacity_and_no_further(
    make_buckets: MakeBuckets, clock: Clock
) -> None:
    buckets = make_buckets(5, 1.0)
    await buckets.take("ip:a")
    clock.now += 3600
    take = await buckets.take("ip:a")
    assert take.tokens == pytest.approx(4.0)
    assert take.reset_at == pytest.approx(clock.now + 1.0)


async def test_each_client_has_its_own_bucket(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(2, 0.001)
    assert [(await buckets.take("ip:a")).allowed for _ in range(3)] == [True, True, False]
    assert (await buckets.take("user:u1")).allowed


async def test_a_clock_behind_the_last_take_refills_nothing(make_buckets: MakeBuckets, clock: Clock) -> None:
    buckets = make_buckets(3, 1.0)
    for _ in range(3):
        await buckets.take("ip:a")
    clock.now -= 30  # another gateway whose clock is behind
    assert not (await buckets.take("ip:a")).allowed
    clock.now += 30.5  # half a second after the last real take: still half a token
    assert not (await buckets.take("ip:a")).allowed


async def test_concurrent_takes_never_share_the_last_token(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(20, 0.001)
    takes = await asyncio.gather(*(buckets.take("ip:a") for _ in range(50)))
    assert sum(t.allowed for t in takes) == 20


async def test_the_script_reloads_after_the_store_forgot_it(redis_client: redis.Redis, clock: Clock) -> None:
    prefix = f"msashop-test-{uuid.uuid4().hex}"
    buckets = RedisBuckets(redis_client, 3, 1.0, prefix, clock)
    assert (await buckets.take("ip:a")).allowed
    await redis_client.script_flush()  # what a restarted store has forgotten
    assert (await buckets.take("ip:a")).remaining == 1
    ttl = await redis_client.pttl(f"{prefix}:bucket:ip:a")
    assert 0 < ttl <= 4000  # gone once a full refill (3 s) would have filled it anyway
    await redis_client.delete(f"{prefix}:bucket:ip:a")
