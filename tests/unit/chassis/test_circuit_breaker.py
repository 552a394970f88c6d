"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

import statistics
import time

import pytest

from msashop.chassis.circuit_breaker import BreakerConfig, CircuitBreaker, CircuitOpen, State
from tests.unit.chassis.fakes_resilience import FakeClock

CONFIG = BreakerConfig(window=20, min_calls=10, failure_rate=0.5, reset_seconds=30.0, trial_calls=3)


def breaker(clock: FakeClock, changes: list[State] | None = None) -> CircuitBreaker:
    def on_change(_: str, state: State) -> None:
        if changes is not None:
            changes.append(state)

    return CircuitBreaker("product", CONFIG, clock=clock, on_change=on_change)


def state(b: CircuitBreaker) -> State:
    # Read through a call: mypy would keep `b.state` narrowed across the calls that change it.
    return b.state


def calls(b: CircuitBreaker, *, failures: int = 0, successes: int = 0) -> None:
    for _ in range(successes):
        b.acquire().success()
    for _ in range(failures):
        b.acquire().failure()


def opened(clock: FakeClock) -> CircuitBreaker:
    b = breaker(clock)
    calls(b, failures=10)
    assert state(b) is State.OPEN
    return b


def test_failures_below_the_minimum_number_of_calls_do_not_open_it() -> None:
    b = breaker(FakeClock())
    calls(b, failures=9)
    assert state(b) is State.CLOSED


def test_it_opens_once_the_minimum_is_seen_and_the_rate_reaches_the_threshold() -> None:
    changes: list[State] = []
    b = breaker(FakeClock(), changes)
    calls(b, successes=5, failures=4)  # 9 calls, 44 %
    assert state(b) is State.CLOSED
    calls(b, failures=1)  # 10 calls, 50 %
    assert state(b) is State.OPEN
    assert changes == [State.OPEN]


def test_a_rate_under_the_threshold_keeps_it_closed() -> None:
    b = breaker(FakeClock())
    calls(b, successes=11, failures=9)  # 45 % of the last 20
    assert state(b) is State.CLOSED


def test_the_rate_is_over_the_last_window_of_calls_only() -> None:
    b = breaker(FakeClock())
    calls(b, failures=9)
    calls(b, successes=20)  # the failures slid out of the window
    calls(b, failures=9)  # 9 of the last 20: 45 %
    assert state(b) is State.CLOSED
    calls(b, failures=1)
    assert state(b) is State.OPEN


def test_open_fails_fast_under_5_ms_per_call() -> None:
    b = opened(FakeClock())
    durations = []
    for _ in range(200):
        started = time.perf_counter()
        with pytest.raises(CircuitOpen) as raised:
            b.acquire()
        durations.append(time.perf_counter() - started)
    assert raised.value.status_code == 503 and raised.value.code == "circuit_open"
    # Per call, as the median and the mean: one scheduling pause on a busy machine is not the breaker's.
    per_call = (statistics.median(durations), statistics.fmean(durations))
    assert max(per_call) < 0.005, per_call


def test_it_half_opens_after_the_reset_timeout() -> None:
    clock = FakeClock()
    b = opened(clock)
    clock.advance(29.9)
    assert state(b) is State.OPEN
    clock.advance(0.1)
    assert state(b) is State.HALF_OPEN


def test_half_open_lets_only_the_trial_calls_through() -> None:
    clock = FakeClock()
    b = opened(clock)
    clock.advance(30)
    trials = [b.acquire() for _ in range(3)]
    with pytest.raises(CircuitOpen):
        b.acquire()
    trials[0].release()  # a cancelled trial gives its slot back
    b.acquire()


def test_the_trial_successes_close_it() -> None:
    clock = FakeClock()
    changes: list[State] = []
    b = breaker(clock, changes)
    calls(b, failures=10)
    clock.advance(30)
    calls(b, successes=2)
    assert state(b) is State.HALF_OPEN
    calls(b, successes=1)
    assert state(b) is State.CLOSED
    assert changes == [State.OPEN, State.HALF_OPEN, State.CLOSED]
    calls(b, failures=9)  # a fresh window: the old failures are forgotten
    assert state(b) is State.CLOSED


def test_one_trial_failure_opens_it_again_for_another_reset_timeout() -> None:
    clock = FakeClock()
    b = opened(clock)
    clock.advance(30)
    calls(b, successes=2, failures=1)
    assert state(b) is State.OPEN
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        b.acquire()
    clock.advance(1)
    assert state(b) is State.HALF_OPEN


def test_calls_started_before_it_opened_do_not_decide_the_next_state() -> None:
    clock = FakeClock()
    b = breaker(clock)
    slow = b.acquire()  # under way while the breaker opens and half-opens
    calls(b, failures=10)
    clock.advance(30)
    assert state(b) is State.HALF_OPEN
    slow.failure()
    assert state(b) is State.HALF_OPEN


def test_a_permit_reports_once() -> None:
    clock = FakeClock()
    b = breaker(clock)
    permit = b.acquire()
    permit.failure()
    permit.failure()
    permit.release()
    calls(b, failures=8)  # 9 failures counted, not 10
    assert state(b) is State.CLOSED
