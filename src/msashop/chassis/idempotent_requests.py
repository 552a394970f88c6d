"""The HTTP side of idempotency keys: a route opts in with the `Idempotency-Key` header.

    @router.post("", response_model=ThingOut, status_code=201, responses=IDEMPOTENCY_RESPONSES)
    async def create(body: ThingIn, user: CurrentUser, store: Idempotency, key: IdempotencyKey = None):
        async def handle(recorder: Recorder) -> ThingOut:
            ...                                            # do the work; inside its transaction,
            await recorder.record(uow.session, answer)     # optionally, before the commit
            return answer
        return await respond_idempotently(store, key, scope=user.user_id, operation="POST /things",
                                          fingerprint=fingerprint(body), status_code=201, handle=handle)

The service wires the store once with `install_idempotency(service)`, which also frees, at start,
the claims this instance's previous process died with and schedules the purge of expired keys.
Semantics: see `msashop.chassis.idempotency`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import pydantic_core
import structlog
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.errors import AppError, error_body
from msashop.chassis.idempotency import (
    LOCK_TIMEOUT,
    TTL,
    Answer,
    Claim,
    ClaimLost,
    IdempotencyError,
    IdempotencyStore,
)

if TYPE_CHECKING:
    from datetime import timedelta

    from msashop.chassis.service import Service

log = structlog.get_logger()

MAX_KEY_LENGTH = 200
REPLAYED_HEADER = "Idempotent-Replayed"

# Printable ASCII without spaces (a UUID, a ULID, a client's own token), bounded: 422 otherwise.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Send the same key again to get the first answer again (24 h)",
    ),
]

IDEMPOTENCY_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "`idempotency_key_in_progress`: a request with this key is still running"},
    422: {"description": "`idempotency_key_reused`: this key was used with another request"},
}


def install_idempotency(
    service: Service,
    *,
    ttl: timedelta = TTL,
    lock_timeout: timedelta = LOCK_TIMEOUT,
    purge_every_seconds: float = 3600.0,
) -> IdempotencyStore:
    """The service's idempotency store, on its database (the migration creates the table)."""
    if service.db is None:
        raise RuntimeError(f"{service.name} has no database for idempotency keys")
    owner = service.settings.instance_id or service.name
    store = IdempotencyStore(service.db, ttl=ttl, lock_timeout=lock_timeout, owner=owner)
    service.app.state.idempotency = store

    async def release_abandoned_idempotency_keys() -> None:
        await store.release_abandoned()

    async def purge_expired_idempotency_keys() -> None:
        await store.purge_expired()

    service.on_startup(release_abandoned_idempotency_keys)
    service.every(purge_every_seconds, purge_expired_idempotency_keys)
    return store


def get_idempotency_store(request: Request) -> IdempotencyStore:
    store: IdempotencyStore = request.app.state.idempotency
    return store


Idempotency = Annotated[IdempotencyStore, Depends(get_idempotency_store)]


def render(body: BaseModel | Any) -> bytes:
    """The JSON bytes of an answer, as FastAPI would send them."""
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return pydantic_core.to_json(body)


class Recorder:
    """Given to the route: `record` stores its answer inside the route's own transaction."""

    def __init__(self, store: IdempotencyStore | None, claim: Claim | None, status_code: int) -> None:
        self._store = store
        self._claim = claim
        self.status_code = status_code
        self.answer: Answer | None = None

    async def record(self, session: AsyncSession, body: BaseModel | Any) -> None:
        """Call just before the commit: the answer commits with the effects, or neither does.

        Raises ClaimLost if another request took the key over; the transaction must roll back.
        """
        answer = Answer(self.status_code, render(body))
        if self._store is not None and self._claim is not None:
            await self._store.finish(self._claim, answer, session=session)
        self.answer = answer


Handle = Callable[[Recorder], Awaitable[BaseModel | Any]]


async def respond_idempotently(
    store: IdempotencyStore,
    key: str | None,
    *,
    scope: str,
    operation: str,
    fingerprint: str,
    status_code: int,
    handle: Handle,
) -> Response:
    """Run `handle` once per (scope, key); a repeat gets the first answer, byte for byte."""
    if key is None:
        recorder = Recorder(None, None, status_code)
        body = await handle(recorder)
        return _response(recorder.answer or Answer(status_code, render(body)))
    begun = await store.begin(scope, key, operation=operation, fingerprint=fingerprint)
    if isinstance(begun, Answer):
        return _response(begun, replayed=True)
    recorder = Recorder(store, begun, status_code)
    try:
        body = await handle(recorder)
    except AppError as exc:
        if exc.status_code >= 500 or isinstance(exc, IdempotencyError):
            await _release(store, begun)
            raise
        # The request's own answer (a 4xx such as unknown_product): kept and replayed, as Stripe does.
        answer = Answer(exc.status_code, render(error_body(exc.code, exc.message, exc.details)))
        await store.finish(begun, answer)
        return _response(answer)
    except BaseException:
        await _release(store, begun)
        raise
    if recorder.answer is not None:
        return _response(recorder.answer)  # stored with the effects
    answer = Answer(status_code, render(body))
    try:
        await store.finish(begun, answer)
    except ClaimLost:
        # The effects are done and cannot be taken back: tell this client what happened anyway.
        log.warning("idempotency.claim_lost_after_effects", scope=scope, key=key, operation=operation)
    return _response(answer)


async def _release(store: IdempotencyStore, claim: Claim) -> None:
    # Shielded: a request cancelled mid-way (client gone) must still free its key.
    try:
        await asyncio.shield(store.release(claim))
    except Exception:  # the original failure matters more; the claim expires with lock_timeout
        log.exception("idempotency.release_failed", scope=claim.scope, key=claim.key)


def _response(answer: Answer, *, replayed: bool = False) -> Response:
    return Response(
        content=answer.body,
        status_code=answer.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"} if replayed else None,
    )
