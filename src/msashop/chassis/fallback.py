"""Fallbacks: "if the user service cannot answer, show Unknown User" in one line.

    user = await with_fallback(client.get("user", f"/users/{uid}"), {"name": "Unknown User"})

Only an unavailable upstream (down, timing out, 5xx, circuit open, bulkhead full: all
`UpstreamUnavailable`) gives the fallback by default; a 404 or a 403 is an answer, and
hiding it behind a default would hide a bug. `on=` widens or narrows that.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog

from msashop.chassis.errors import UpstreamUnavailable

log = structlog.get_logger()

T = TypeVar("T")


async def with_fallback(
    call: Awaitable[T],
    default: T,
    *,
    on: tuple[type[Exception], ...] = (UpstreamUnavailable,),
) -> T:
    """`await call`, or `default` when it raises one of `on`."""
    try:
        return await call
    except on as exc:
        log.info("call.fallback", error=type(exc).__name__, code=getattr(exc, "code", None))
        return default
