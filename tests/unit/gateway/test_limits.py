"""Connection limits: in flight up to max connections, a bounded pending queue, then a fast refusal."""

import asyncio

import pytest

from msashop.gateway.limits import ConnectionLimiter, UpstreamOverloaded


async def test_requests_beyond_connections_and_pending_are_refused_at_once() -> None:
    limiter = ConnectionLimiter(max_connections=2, max_pending=1)
    await limiter.acquire()
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert (limiter.active, limiter.pending) == (2, 1)
    with pytest.raises(UpstreamOverloaded) as refused:
        await limiter.acquire()
    assert (refused.value.status_code, refused.value.code) == (503, "upstream_overloaded")
    limiter.release()
    await asyncio.wait_for(waiting, 1)
    assert (limiter.active, limiter.pending) == (2, 0)


async def test_waiters_are_served_first_come_first_served() -> None:
    limiter = ConnectionLimiter(max_connections=1, max_pending=5)
    await limiter.acquire()
    order: list[int] = []

    async def wait(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        limiter.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert limiter.active == 1


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    limiter = ConnectionLimiter(max_connections=1, max_pending=1)
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    assert limiter.pending == 0
    limiter.release()
    assert limiter.active == 0


async def test_a_waiter_cancelled_after_being_given_a_slot_passes_it_on() -> None:
    limiter = ConnectionLimiter(max_connections=1, max_pending=2)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # the slot goes to `first`...
    first.cancel()  # ...which gives up before running
    await asyncio.wait_for(second, 1)
    assert (limiter.active, limiter.pending) == (1, 0)


async def test_zero_pending_refuses_as_soon_as_connections_are_full() -> None:
    limiter = ConnectionLimiter(max_connections=1, max_pending=0)
    await limiter.acquire()
    with pytest.raises(UpstreamOverloaded):
        await limiter.acquire()


async def test_raising_the_limit_lets_waiters_in() -> None:
    limiter = ConnectionLimiter(max_connections=1, max_pending=3)
    await limiter.acquire()
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    limiter.resize(3, 3)
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert (limiter.active, limiter.pending) == (3, 0)
