"""A circuit breaker per upstream service: CLOSED, OPEN, HALF_OPEN.

CLOSED lets every call through and remembers the outcome of the last `window` calls; once it
has seen `min_calls` and at least `failure_rate` of them failed, it opens. OPEN refuses every
call at once (`CircuitOpen`, 503 `circuit_open`): no network, no retry, so a caller under load
spends microseconds rather than a timeout on a service that is down. After `reset_seconds`
it is HALF_OPEN: `trial_calls` calls go through; that many successes close it, one failure
opens it again for another `reset_seconds`.

A call holds a `Permit` and reports on it exactly once (success, failure, or `release` for a
call that never reached the upstream or was cancelled). A permit taken before a state change
(a slow call that started while CLOSED and ends after the breaker opened) is stale: its
outcome changes nothing, so only calls made in the current state decide the next one.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from msashop.chassis.errors import UpstreamUnavailable

log = structlog.get_logger()


class State(enum.IntEnum):
    """Values are what the `circuit_breaker_state` gauge shows."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpen(UpstreamUnavailable):
    code = "circuit_open"


@dataclass(frozen=True)
class BreakerConfig:
    window: int = 20
    min_calls: int = 10
    failure_rate: float = 0.5
    reset_seconds: float = 30.0
    trial_calls: int = 3


class Permit:
    """The right to make one call; report its outcome once."""

    __slots__ = ("_breaker", "_done", "generation")

    def __init__(self, breaker: CircuitBreaker, generation: int) -> None:
        self._breaker = breaker
        self.generation = generation
        self._done = False

    def success(self) -> None:
        self._report(True)

    def failure(self) -> None:
        self._report(False)

    def release(self) -> None:
        """The call did not count (it never reached the upstream, or was cancelled)."""
        if not self._done:
            self._done = True
            self._breaker._released(self)

    def _report(self, ok: bool) -> None:
        if not self._done:
            self._done = True
            self._breaker._recorded(self, ok)


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, State], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        # Bumped on every state change: permits from an earlier state are stale.
        self._generation = 0
        self._outcomes: deque[bool] = deque(maxlen=self.config.window)  # True: failed
        self._opened_at = 0.0
        self._trials_started = 0
        self._trial_successes = 0

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.config.reset_seconds:
            self._move(State.HALF_OPEN)
        return self._state

    def acquire(self) -> Permit:
        """A permit for one call, or CircuitOpen at once."""
        state = self.state
        if state is State.OPEN:
            raise CircuitOpen(f"{self.name} is unavailable (circuit open)")
        if state is State.HALF_OPEN:
            if self._trials_started >= self.config.trial_calls:
                raise CircuitOpen(f"{self.name} is unavailable (circuit half-open, trials under way)")
            self._trials_started += 1
        return Permit(self, self._generation)

    def _recorded(self, permit: Permit, ok: bool) -> None:
        if permit.generation != self._generation:
            return
        if self._state is State.HALF_OPEN:
            if not ok:
                self._move(State.OPEN)
                return
            self._trial_successes += 1
            if self._trial_successes >= self.config.trial_calls:
                self._move(State.CLOSED)
            return
        self._outcomes.append(not ok)
        if not ok and self._tripped():
            self._move(State.OPEN)

    def _released(self, permit: Permit) -> None:
        if permit.generation == self._generation and self._state is State.HALF_OPEN:
            self._trials_started -= 1  # give the trial slot back

    def _tripped(self) -> bool:
        seen = len(self._outcomes)
        if seen < self.config.min_calls:
            return False
        return sum(self._outcomes) / seen >= self.config.failure_rate

    def _move(self, state: State) -> None:
        previous = self._state
        self._state = state
        self._generation += 1
        self._trials_started = self._trial_successes = 0
        if state is State.OPEN:
            self._opened_at = self._clock()
        if state is State.CLOSED:
            self._outcomes.clear()
        log.warning("circuit.state_changed", upstream=self.name, state=state.name, previous=previous.name)
        if self._on_change is not None:
            self._on_change(self.name, state)
