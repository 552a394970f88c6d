"""with_fallback: a default for an unavailable upstream, never for an answer."""

from __future__ import annotations

from typing import Any

import pytest

from msashop.chassis.bulkhead import BulkheadFull
from msashop.chassis.circuit_breaker import CircuitOpen
from msashop.chassis.errors import NotFound, UpstreamUnavailable
from msashop.chassis.fallback import with_fallback

UNKNOWN = {"name": "Unknown User"}


async def failing(error: Exception) -> Any:
    raise error


async def test_the_answer_when_there_is_one() -> None:
    async def ada() -> dict[str, str]:
        return {"name": "Ada"}

    assert await with_fallback(ada(), UNKNOWN) == {"name": "Ada"}


@pytest.mark.parametrize("error", [UpstreamUnavailable("down"), CircuitOpen("open"), BulkheadFull("full")])
async def test_the_default_when_the_upstream_is_unavailable(error: Exception) -> None:
    assert await with_fallback(failing(error), UNKNOWN) == UNKNOWN


async def test_an_answer_like_404_is_not_hidden() -> None:
    with pytest.raises(NotFound):
        await with_fallback(failing(NotFound("no such user")), UNKNOWN)
    assert await with_fallback(failing(NotFound("gone")), UNKNOWN, on=(NotFound,)) == UNKNOWN
