"""Which calls are tried again, and after how long (tenacity).

Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried: a POST that timed out
may have been done, and doing it twice is not ours to decide (an idempotency key is the
caller's way to make it safe). They are retried when the answer says "not now" (408, 429,
502, 503, 504) or there was no answer (connection refused or reset, timeout), never on
another 4xx or a 500, which would answer the same again.

The wait before attempt n+1 is exponential with jitter: between half and all of
`initial_wait * 2**(n-1)`, so callers that failed together do not come back together. When
the answer names a `Retry-After` (seconds or an HTTP date) that is the wait. No wait is longer
than `max_wait` (10 s): past that, the caller is better served by an error it can act on.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})


class NoAnswer(Exception):
    """A call that got no HTTP answer: no connection, reset, or timeout."""


class Answered(Protocol):
    """What an attempt that got an HTTP answer returns."""

    @property
    def status(self) -> int: ...

    @property
    def retry_after(self) -> float | None: ...


def is_idempotent(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or an HTTP date); None if
    absent or unreadable; 0 for a date already past."""
    if not value or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # HTTP dates are GMT
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    return seconds if seconds >= 0 else None


class RetryPolicy:
    def __init__(
        self,
        max_attempts: int = 3,
        initial_wait: float = 0.1,
        max_wait: float = 10.0,
        *,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("a call is attempted at least once")
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self._random = random_fraction

    @staticmethod
    def retryable(status: int | None) -> bool:
        """Whether an idempotent call is tried again after this answer (None: no answer)."""
        return status is None or status in RETRYABLE_STATUSES

    def wait(self, failed_attempt: int, retry_after: float | None = None) -> float:
        """Seconds before the attempt after `failed_attempt` (1 for the first)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        ceiling = min(self.initial_wait * 2.0 ** (failed_attempt - 1), self.max_wait)
        return ceiling / 2 + ceiling / 2 * self._random()

    def retrying(
        self,
        method: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """A tenacity loop for one call: attempts return an `Answered` or raise NoAnswer; the
        last attempt's answer is returned (or its NoAnswer raised) once attempts run out."""
        attempts = self.max_attempts if is_idempotent(method) else 1
        return AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._tenacity_wait,
            retry=retry_if_exception_type(NoAnswer) | retry_if_result(_retryable_answer),
            sleep=sleep,
            before_sleep=before_sleep,
            retry_error_callback=_last_outcome,
        )

    def _tenacity_wait(self, state: RetryCallState) -> float:
        retry_after = None
        if state.outcome is not None and not state.outcome.failed:
            retry_after = state.outcome.result().retry_after
        return self.wait(state.attempt_number, retry_after)


def _retryable_answer(answer: Answered) -> bool:
    return RetryPolicy.retryable(answer.status)


def _last_outcome(state: RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()  # the answer, or the attempt's exception raised again
