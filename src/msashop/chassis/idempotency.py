"""Idempotency keys with Stripe's semantics, stored in the service's own database.

A client that sends `Idempotency-Key: K` with a write may send it again (a timeout, a retry) and
the write happens once:

- the same key and the same request within `ttl` (24 h) answer the first answer again, the same
  status and the same bytes (`Idempotent-Replayed: true` marks the replay);
- the same key with another request (other body or other operation) is 422
  `idempotency_key_reused`;
- the same key while the first request is still running is 409 `idempotency_key_in_progress`
  (the client retries later and then gets the replay);
- a request that fails (5xx or an exception) releases its key, so a retry runs afresh; an answer
  the request itself gave (2xx, or a 4xx such as `unknown_product`) is kept and replayed;
- a key older than `ttl` counts as new; a periodic job deletes such keys.

Keys are per scope (the user id): one user's key never touches another's.

`begin` claims the key in a short transaction of its own, so the claim is visible to a concurrent
duplicate at once. Each claim carries a random token; `finish` and `release` only act on the
row while that token still holds it. A claim older than `lock_timeout` is taken to be abandoned
(its process died) and a new request may take it over; an instance that starts frees the claims
it left itself (`release_abandoned`: its previous process died with them). A route whose effects
commit in one transaction should record its answer inside that transaction (`Recorder.record`):
the effects and the answer then commit together, and a request whose claim was taken over rolls
back instead of acting twice.

The rules, without I/O, are `msashop.chassis.idempotency_rules` (re-exported here); the FastAPI
side is `msashop.chassis.idempotent_requests`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import SchemaItem

from msashop.chassis.db import Database
from msashop.chassis.idempotency_rules import (
    LOCK_TIMEOUT,
    TTL,
    Answer,
    Claim,
    ClaimLost,
    IdempotencyError,
    KeyInProgress,
    KeyReused,
    Record,
    State,
    Verdict,
    decide,
    fingerprint,
)

__all__ = [
    "LOCK_TIMEOUT",
    "TTL",
    "Answer",
    "Claim",
    "ClaimLost",
    "IdempotencyError",
    "IdempotencyStore",
    "KeyInProgress",
    "KeyReused",
    "Record",
    "State",
    "Verdict",
    "create_idempotency_table",
    "decide",
    "fingerprint",
    "idempotency_keys",
    "metadata",
]

log = structlog.get_logger()


def _columns() -> list[SchemaItem]:
    return [
        sa.Column("scope", sa.String(128), primary_key=True),  # whose key: the user id
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("operation", sa.String(100), nullable=False),  # e.g. "POST /orders"
        sa.Column("fingerprint", sa.String(64), nullable=False),  # sha256 of the canonical body
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),  # which claim holds the key
        sa.Column("owner", sa.String(128), nullable=False),  # which service instance claimed it
        sa.Column("status_code", sa.Integer, nullable=True),  # the answer, once done
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    ]


metadata = sa.MetaData()
idempotency_keys = sa.Table("idempotency_keys", metadata, *_columns())


def create_idempotency_table(op: Any) -> None:
    """For a service's Alembic migration: the table the store uses."""
    op.create_table("idempotency_keys", *_columns())  # with its index on created_at (the purge)


# --- the store ---------------------------------------------------------------------------------
class _Raced(Exception):
    """Another request claimed the key between our read and our write: look again."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite hands back naive


class IdempotencyStore:
    def __init__(
        self,
        db: Database,
        *,
        ttl: timedelta = TTL,
        lock_timeout: timedelta = LOCK_TIMEOUT,
        clock: Callable[[], datetime] = _utcnow,
        owner: str = "",
    ) -> None:
        self.db = db
        self.owner = owner  # this instance (one process at a time), e.g. "order-2"
        self.ttl = ttl
        self.lock_timeout = lock_timeout
        self.clock = clock

    async def begin(self, scope: str, key: str, *, operation: str, fingerprint: str) -> Claim | Answer:
        """Claim the key (run the request) or answer from what is recorded for it.

        Raises KeyInProgress (409) or KeyReused (422).
        """
        for _ in range(3):
            try:
                return await self._begin_once(scope, key, operation, fingerprint)
            except (IntegrityError, _Raced):
                continue
        raise KeyInProgress()  # claimed and reclaimed under us three times: someone holds it

    async def _begin_once(self, scope: str, key: str, operation: str, fingerprint: str) -> Claim | Answer:
        t = idempotency_keys
        now = self.clock()
        async with self._transaction() as session:
            record = await self._get(session, scope, key)
            verdict = decide(
                record,
                operation=operation,
                fingerprint=fingerprint,
                now=now,
                ttl=self.ttl,
                lock_timeout=self.lock_timeout,
            )
            if verdict is Verdict.REUSED:
                raise KeyReused()
            if verdict is Verdict.IN_PROGRESS:
                log.info("idempotency.in_progress", scope=scope, key=key)
                raise KeyInProgress()
            if verdict is Verdict.REPLAY:
                assert record is not None and record.answer is not None
                log.info("idempotency.replayed", scope=scope, key=key, status=record.answer.status_code)
                return record.answer
            claim = Claim(scope, key, uuid.uuid4().hex)
            values = {
                "operation": operation,
                "fingerprint": fingerprint,
                "state": State.IN_PROGRESS.value,
                "token": claim.token,
                "owner": self.owner,
                "status_code": None,
                "body": None,
                "created_at": now,
            }
            if record is None:
                await session.execute(sa.insert(t).values(scope=scope, key=key, **values))
            else:  # expired or abandoned: taken over only if nobody else took it since our read
                if record.state is State.IN_PROGRESS:
                    log.warning("idempotency.abandoned_claim_taken_over", scope=scope, key=key)
                taken = await session.execute(
                    sa.update(t).where(*self._row(scope, key), t.c.token == record.token).values(**values)
                )
                if _rowcount(taken) != 1:
                    raise _Raced()
            return claim

    async def finish(self, claim: Claim, answer: Answer, *, session: AsyncSession | None = None) -> None:
        """Store the answer. In `session` (the request's own transaction) or in a new one.

        Raises ClaimLost if the key is no longer this claim's: the caller's transaction must not
        commit.
        """
        t = idempotency_keys
        statement = (
            sa.update(t)
            .where(
                *self._row(claim.scope, claim.key), t.c.token == claim.token, t.c.state == State.IN_PROGRESS
            )
            .values(state=State.DONE.value, status_code=answer.status_code, body=answer.body.decode())
        )
        if session is not None:
            done = _rowcount(await session.execute(statement))
        else:
            async with self._transaction() as own:
                done = _rowcount(await own.execute(statement))
        if done != 1:
            raise ClaimLost()

    async def release(self, claim: Claim) -> None:
        """The request failed: forget the key, so that a retry runs (a stored answer stays)."""
        t = idempotency_keys
        async with self._transaction() as session:
            await session.execute(
                sa.delete(t).where(
                    *self._row(claim.scope, claim.key),
                    t.c.token == claim.token,
                    t.c.state == State.IN_PROGRESS,
                )
            )
        log.info("idempotency.released", scope=claim.scope, key=claim.key)

    async def release_abandoned(self) -> int:
        """At start: this instance's claims in progress belong to a process that died. Free them,
        so that retries run at once instead of waiting out the lock timeout."""
        t = idempotency_keys
        async with self._transaction() as session:
            freed = _rowcount(
                await session.execute(
                    sa.delete(t).where(t.c.owner == self.owner, t.c.state == State.IN_PROGRESS)
                )
            )
        if freed:
            log.warning("idempotency.abandoned_claims_released", owner=self.owner, keys=freed)
        return freed

    async def purge_expired(self) -> int:
        """Delete the keys older than `ttl` (they count as new anyway); how many went."""
        cutoff = self.clock() - self.ttl
        async with self._transaction() as session:
            deleted = _rowcount(
                await session.execute(
                    sa.delete(idempotency_keys).where(idempotency_keys.c.created_at <= cutoff)
                )
            )
        if deleted:
            log.info("idempotency.purged", keys=deleted)
        return deleted

    async def get(self, scope: str, key: str) -> Record | None:
        async with self.db.read() as session:
            return await self._get(session, scope, key)

    # --- helpers -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.db.writing(), self.db.session() as session, session.begin():
            yield session

    @staticmethod
    def _row(scope: str, key: str) -> tuple[sa.ColumnElement[bool], ...]:
        return (idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)

    async def _get(self, session: AsyncSession, scope: str, key: str) -> Record | None:
        row = (await session.execute(sa.select(idempotency_keys).where(*self._row(scope, key)))).first()
        if row is None:
            return None
        answer = None
        if row.status_code is not None and row.body is not None:
            answer = Answer(int(row.status_code), str(row.body).encode())
        return Record(
            operation=row.operation,
            fingerprint=row.fingerprint,
            state=State(row.state),
            created_at=_utc(row.created_at),
            token=row.token,
            answer=answer,
        )


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
