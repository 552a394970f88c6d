"""The idempotency key's state machine (`decide`), its fingerprint and the errors' answers: no I/O.

new -> in progress -> done (replayed for 24 h) -> expired (new again); in progress that is older
than the lock timeout is abandoned (new again); another request under a live key is reused (422),
whatever its state; a duplicate while in progress is 409.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from msashop.chassis.idempotency import (
    LOCK_TIMEOUT,
    TTL,
    Answer,
    ClaimLost,
    KeyInProgress,
    KeyReused,
    Record,
    State,
    Verdict,
    decide,
    fingerprint,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OP = "POST /orders"


def record(state: State, *, age: timedelta = timedelta(0), fp: str = "f1", op: str = OP) -> Record:
    answer = Answer(202, b'{"id":"o1"}') if state is State.DONE else None
    return Record(op, fp, state, T0 - age, "token", answer)


def verdict(found: Record | None, *, fp: str = "f1", op: str = OP) -> Verdict:
    return decide(found, operation=op, fingerprint=fp, now=T0)


def test_an_unknown_key_runs_the_request() -> None:
    assert verdict(None) is Verdict.NEW


def test_a_done_key_with_the_same_request_replays_until_24_hours() -> None:
    assert verdict(record(State.DONE)) is Verdict.REPLAY
    assert verdict(record(State.DONE, age=TTL - timedelta(microseconds=1))) is Verdict.REPLAY


def test_a_key_24_hours_old_counts_as_new_whatever_it_held() -> None:
    assert TTL == timedelta(hours=24)
    assert verdict(record(State.DONE, age=TTL)) is Verdict.NEW
    assert verdict(record(State.DONE, age=TTL, fp="other")) is Verdict.NEW  # no 422 any more


def test_a_duplicate_while_the_first_runs_is_in_progress() -> None:
    assert verdict(record(State.IN_PROGRESS)) is Verdict.IN_PROGRESS
    assert verdict(record(State.IN_PROGRESS, age=LOCK_TIMEOUT - timedelta(seconds=1))) is Verdict.IN_PROGRESS


def test_a_claim_older_than_the_lock_timeout_is_abandoned_and_taken_over() -> None:
    assert verdict(record(State.IN_PROGRESS, age=LOCK_TIMEOUT)) is Verdict.NEW


@pytest.mark.parametrize("state", [State.IN_PROGRESS, State.DONE])
def test_another_body_or_operation_under_a_live_key_is_reused(state: State) -> None:
    assert verdict(record(state), fp="f2") is Verdict.REUSED
    assert verdict(record(state), op="POST /payments") is Verdict.REUSED


def test_the_lock_timeout_and_ttl_are_the_callers_to_choose() -> None:
    found = record(State.IN_PROGRESS, age=timedelta(seconds=5))
    assert decide(found, operation=OP, fingerprint="f1", now=T0, lock_timeout=timedelta(seconds=5)) is (
        Verdict.NEW
    )
    done = record(State.DONE, age=timedelta(hours=1))
    assert decide(done, operation=OP, fingerprint="f1", now=T0, ttl=timedelta(hours=1)) is Verdict.NEW


class Body(BaseModel):
    items: list[dict[str, int]]
    note: str | None = None


def test_the_fingerprint_ignores_key_order_and_spacing_but_not_content() -> None:
    a = fingerprint({"b": 1, "a": [1, 2]})
    assert a == fingerprint({"a": [1, 2], "b": 1})
    assert a != fingerprint({"a": [2, 1], "b": 1})
    assert len(a) == 64
    assert fingerprint(Body(items=[{"q": 1}])) == fingerprint({"items": [{"q": 1}], "note": None})


def test_the_errors_answer_409_and_422_with_their_codes() -> None:
    assert (KeyInProgress.status_code, KeyInProgress().code) == (409, "idempotency_key_in_progress")
    assert (ClaimLost.status_code, ClaimLost().code) == (409, "idempotency_key_in_progress")
    assert (KeyReused.status_code, KeyReused().code) == (422, "idempotency_key_reused")
