"""The rules of an idempotency key, no I/O: its states, what a request under it may do
(`decide`), the request's fingerprint and the errors a client gets. The store that applies them
is `msashop.chassis.idempotency`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from msashop.chassis.errors import Conflict, Unprocessable

TTL = timedelta(hours=24)
# Longer than any request runs (the order service's calls out are cut off well before).
LOCK_TIMEOUT = timedelta(seconds=60)


class State(StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


def fingerprint(body: BaseModel | Mapping[str, Any]) -> str:
    """sha256 of the request as validated, in canonical JSON: key order and spacing do not count."""
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- errors ------------------------------------------------------------------------------------
class IdempotencyError(Exception):
    """Raised by the store itself; never recorded as a request's answer."""


class KeyInProgress(IdempotencyError, Conflict):
    code = "idempotency_key_in_progress"

    def __init__(self, message: str = "a request with this Idempotency-Key is still in progress") -> None:
        super().__init__(message)


class ClaimLost(KeyInProgress):
    """Our claim was taken over (we ran past `lock_timeout`): our effects must not commit."""

    def __init__(self) -> None:
        super().__init__("another request took this Idempotency-Key over")


class KeyReused(IdempotencyError, Unprocessable):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


# --- the state machine, no I/O -----------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """A request's first answer, replayed as is."""

    status_code: int
    body: bytes  # JSON


@dataclass(frozen=True)
class Claim:
    """This request holds the key; `token` tells it apart from a later claim of the same key."""

    scope: str
    key: str
    token: str


@dataclass(frozen=True)
class Record:
    operation: str
    fingerprint: str
    state: State
    created_at: datetime
    token: str
    answer: Answer | None


class Verdict(StrEnum):
    NEW = "new"  # no record, an expired one or an abandoned claim: run the request
    REPLAY = "replay"
    IN_PROGRESS = "in_progress"
    REUSED = "reused"


def decide(
    record: Record | None,
    *,
    operation: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta = TTL,
    lock_timeout: timedelta = LOCK_TIMEOUT,
) -> Verdict:
    """What a request with this key may do, given what is recorded for the key."""
    if record is None:
        return Verdict.NEW
    age = now - record.created_at
    if age >= ttl:
        return Verdict.NEW
    # Checked before the state: another request never succeeds, however often it is retried.
    if (record.operation, record.fingerprint) != (operation, fingerprint):
        return Verdict.REUSED
    if record.state is State.DONE:
        return Verdict.REPLAY
    return Verdict.NEW if age >= lock_timeout else Verdict.IN_PROGRESS
