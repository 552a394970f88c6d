"""Signing keys of access tokens: the states a key goes through and which are published. No I/O.

A key is *pending* until it is made current, *current* while new tokens are signed with it,
*previous* after a rotation for as long as a token it signed can still be valid (the grace), then
*retired*: no longer published, so its tokens fail everywhere. An operator may retire a previous
key early (it leaked); the current one only by rotating first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class KeyState(StrEnum):
    PENDING = "pending"
    CURRENT = "current"
    PREVIOUS = "previous"
    RETIRED = "retired"


@dataclass(frozen=True)
class KeyRecord:
    """What the database keeps of a key: its public half and its dates, never the private key."""

    kid: str
    jwk: dict[str, str]
    created_at: datetime  # first seen (loaded from a file or the environment, or generated)
    activated_at: datetime | None = None  # became current
    superseded_at: datetime | None = None  # another key became current
    retired_at: datetime | None = None  # retired by hand before its grace ended

    def state(self, now: datetime, grace: timedelta) -> KeyState:
        if self.retired_at is not None:
            return KeyState.RETIRED
        if self.activated_at is None:
            return KeyState.PENDING
        if self.superseded_at is None:
            return KeyState.CURRENT
        return KeyState.PREVIOUS if now < self.superseded_at + grace else KeyState.RETIRED

    def published_until(self, grace: timedelta) -> datetime | None:
        """When a previous key leaves the JWKS (None: not superseded, or retired by hand)."""
        if self.superseded_at is None or self.retired_at is not None:
            return None
        return self.superseded_at + grace


def grace_period(access_ttl_seconds: int, leeway_seconds: int, reload_seconds: float) -> timedelta:
    """How long a superseded key keeps verifying: the last token it signed must expire first.

    Another replica may sign with it until it reloads the ring (`reload_seconds`), that token lives
    one access-token lifetime, and verifiers accept it `leeway_seconds` past its expiry.
    """
    return timedelta(seconds=access_ttl_seconds + leeway_seconds + reload_seconds)


def current(records: list[KeyRecord], now: datetime, grace: timedelta) -> KeyRecord | None:
    found = [r for r in records if r.state(now, grace) is KeyState.CURRENT]
    # Two current keys can only follow a race between rotations: the newest wins.
    return max(found, key=lambda r: (r.activated_at, r.kid), default=None)


def published(records: list[KeyRecord], now: datetime, grace: timedelta) -> list[KeyRecord]:
    """The keys in the JWKS: the current one first, then the previous ones, newest first."""
    live = [r for r in records if r.state(now, grace) in (KeyState.CURRENT, KeyState.PREVIOUS)]
    return sorted(live, key=lambda r: (r.superseded_at is None, r.activated_at, r.kid), reverse=True)


def next_key(records: list[KeyRecord], now: datetime, grace: timedelta) -> KeyRecord | None:
    """The pending key a rotation makes current: the newest one provided."""
    pending = [r for r in records if r.state(now, grace) is KeyState.PENDING]
    return max(pending, key=lambda r: (r.created_at, r.kid), default=None)
