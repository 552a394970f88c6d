"""Service tokens for calls to other services: client credentials (RFC 6749 §4.4) from the user
service, one token per called service (its `aud`), cached until shortly before it expires.

`ServiceTokens.get(audience)` is what the service client asks on every call. A cached token is
handed out without I/O; one that expires within `refresh_margin` seconds is fetched again, once
for all the calls that want it at the same moment (single flight). When the fetch fails the token
in hand is used while it is still valid; without one the call goes out without a service token
(the callee then refuses what needs one) and fetches are spaced by `retry_after_failure`, so an
outage of the user service does not become one token request per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from msashop.chassis.service_client import ServiceClient

log = structlog.get_logger()

TOKEN_PATH = "/oauth/token"
ISSUER_SERVICE = "user"  # the service that holds the client registry and signs service tokens


@dataclass(frozen=True)
class IssuedToken:
    value: str
    expires_in: float  # seconds, as the issuer said


# (audience) -> a fresh token for it; raises when none can be had.
Fetch = Callable[[str], Awaitable[IssuedToken]]


@dataclass
class _Cached:
    value: str
    expires_at: float  # monotonic


class ServiceTokens:
    def __init__(
        self,
        fetch: Fetch,
        *,
        refresh_margin: float = 30.0,
        retry_after_failure: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.refresh_margin = refresh_margin
        self.retry_after_failure = retry_after_failure
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed_at: dict[str, float] = {}

    def cached(self, audience: str) -> str | None:
        """The token in hand for `audience` if it does not need refreshing yet (no I/O)."""
        found = self._cache.get(audience)
        if found is not None and self._clock() < found.expires_at - self.refresh_margin:
            return found.value
        return None

    async def get(self, audience: str) -> str | None:
        """A valid token for calls to `audience`, or None when none can be had now."""
        if (token := self.cached(audience)) is not None:
            return token
        lock = self._locks.setdefault(audience, asyncio.Lock())
        async with lock:
            if (token := self.cached(audience)) is not None:  # another call just fetched it
                return token
            if self._clock() - self._failed_at.get(audience, -float("inf")) >= self.retry_after_failure:
                await self._refresh(audience)
            return self._still_valid(audience)

    async def _refresh(self, audience: str) -> None:
        try:
            issued = await self.fetch(audience)
        except Exception as exc:  # noqa: BLE001 - the issuer may be down: keep what is in hand
            self._failed_at[audience] = self._clock()
            log.warning("service_token.fetch_failed", audience=audience, error=type(exc).__name__)
            return
        self._failed_at.pop(audience, None)
        self._cache[audience] = _Cached(issued.value, self._clock() + issued.expires_in)

    def _still_valid(self, audience: str) -> str | None:
        found = self._cache.get(audience)
        return found.value if found is not None and self._clock() < found.expires_at else None


def read_secret(value: str | None, path: Path | None) -> str | None:
    """A client secret given as text, else read from `path` (stripped); None when neither has one."""
    if value:
        return value
    if path is not None and path.is_file():
        return path.read_text().strip() or None
    return None


def client_credentials(client: ServiceClient, client_id: str, secret: str) -> Fetch:
    """A `Fetch` asking the user service's token endpoint, through the service client (discovery,
    retries, breaker), without a service token of its own (that would need this very call)."""

    async def fetch(audience: str) -> IssuedToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": audience,
        }
        body: Any = await client.post(ISSUER_SERVICE, TOKEN_PATH, data=form, service_token=False)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise ValueError("the token endpoint answered without an access_token")
        return IssuedToken(body["access_token"], float(body.get("expires_in", 0)))

    return fetch
