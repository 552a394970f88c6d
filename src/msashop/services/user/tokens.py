"""Issuing and ending sessions: access tokens signed with the ring's current key, refresh tokens,
and the revocation store that makes ended sessions fail everywhere at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from msashop.chassis.auth import LEEWAY_SECONDS
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.signing import SigningKey
from msashop.services.user.domain import RefreshToken, User, new_refresh_token
from msashop.services.user.keyring import KeyRing


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class TokenIssuer:
    """Signs access tokens, mints refresh tokens, and ends sessions in the shared revocation store."""

    keyring: KeyRing
    store: RevocationStore
    access_ttl_seconds: int
    refresh_ttl: timedelta

    @property
    def key(self) -> SigningKey:
        """The key signing new tokens now (it changes on a rotation)."""
        return self.keyring.key

    def issue(self, user: User, session_id: str, now: datetime) -> tuple[TokenPair, RefreshToken]:
        access, _ = self.key.access_token(
            user.id, user.roles, email=user.email, session_id=session_id, ttl_seconds=self.access_ttl_seconds
        )
        raw, token = new_refresh_token(user.id, session_id, now, self.refresh_ttl)
        return TokenPair(access, raw, self.access_ttl_seconds), token

    async def end_sessions(self, session_ids: Iterable[str]) -> None:
        """Every access token of these sessions stops working (they live at most one TTL)."""
        for sid in session_ids:
            await self.store.revoke(f"sid:{sid}", self.access_ttl_seconds + LEEWAY_SECONDS)

    async def revoke_access_token(self, claims: dict[str, Any]) -> None:
        remaining = int(claims["exp"]) - int(datetime.now(UTC).timestamp()) + LEEWAY_SECONDS
        await self.store.revoke(f"jti:{claims['jti']}", max(1, remaining))
