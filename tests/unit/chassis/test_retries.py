"""The retry policy: which calls are retried, how long it waits, Retry-After, the cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from msashop.chassis.retries import NoAnswer, RetryPolicy, is_idempotent, parse_retry_after

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None = None


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "get"])
def test_idempotent_methods(method: str) -> None:
    assert is_idempotent(method)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_methods_that_are_not_idempotent(method: str) -> None:
    assert not is_idempotent(method)


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504, None])
def test_retried_answers(status: int | None) -> None:
    assert RetryPolicy.retryable(status)


@pytest.mark.parametrize("status", [200, 201, 400, 401, 403, 404, 409, 422, 500, 501])
def test_answers_that_are_not_retried(status: int) -> None:
    assert not RetryPolicy.retryable(status)


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("1.5") == 1.5


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(when, now=NOW) == 7.0
    past = format_datetime(NOW - timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "Mon, 99 Foo 2025"])
def test_retry_after_that_cannot_be_read_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_backoff_doubles_with_jitter_between_half_and_all_of_the_step() -> None:
    low = RetryPolicy(initial_wait=0.1, max_wait=10, random_fraction=lambda: 0.0)
    high = RetryPolicy(initial_wait=0.1, max_wait=10, random_fraction=lambda: 1.0)
    assert [low.wait(n) for n in (1, 2, 3)] == pytest.approx([0.05, 0.1, 0.2])
    assert [high.wait(n) for n in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])


def test_no_wait_is_longer_than_the_cap_retry_after_included() -> None:
    policy = RetryPolicy(initial_wait=1, max_wait=10, random_fraction=lambda: 1.0)
    assert policy.wait(10) == 10
    assert policy.wait(1, retry_after=3) == 3
    assert policy.wait(1, retry_after=120) == 10


async def test_an_idempotent_call_is_tried_max_attempts_times_waiting_as_told() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    answers = [Answer(503, retry_after=2.0), Answer(429), Answer(503)]
    policy = RetryPolicy(max_attempts=3, initial_wait=0.1, random_fraction=lambda: 1.0)

    async def attempt() -> Answer:
        return answers.pop(0)

    last: Answer = await policy.retrying("GET", sleep=sleep)(attempt)
    assert last == Answer(503) and answers == []
    assert slept == pytest.approx([2.0, 0.2])


async def test_a_call_stops_at_the_first_answer_not_retried() -> None:
    answers: list[Answer | NoAnswer] = [NoAnswer("refused"), Answer(200), Answer(200)]

    async def attempt() -> Answer:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(_: float) -> None:
        return None

    assert await RetryPolicy().retrying("PUT", sleep=sleep)(attempt) == Answer(200)
    assert len(answers) == 1


async def test_no_answer_on_every_attempt_raises_the_last_one() -> None:
    count = 0

    async def attempt() -> Answer:
        nonlocal count
        count += 1
        raise NoAnswer(f"attempt {count}")

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(NoAnswer, match="attempt 3"):
        await RetryPolicy(max_attempts=3).retrying("GET", sleep=sleep)(attempt)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_call_that_is_not_idempotent_is_attempted_once(method: str) -> None:
    count = 0

    async def attempt() -> Answer:
        nonlocal count
        count += 1
        raise NoAnswer("timeout")

    with pytest.raises(NoAnswer):
        await RetryPolicy(max_attempts=3).retrying(method)(attempt)
    assert count == 1
