"""Tokens whose signature and claims were checked already, so a repeat costs a lookup.

A client sends the same access token on every request for its lifetime; decoding and verifying
it (base64, JSON, an Ed25519 signature, the claim rules) is most of what checking it costs. What
can change for a token after that check is only time (exp, nbf), its key leaving the JWKS and
revocation: the caller re-checks the key and the revocation store on every request, and an entry
is used only while its token's time claims would still pass, so a hit answers as a decode would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    kid: str
    not_before: float  # nbf minus the leeway
    expires: float  # exp plus the leeway


class VerifiedTokens:
    def __init__(self, leeway_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.leeway = leeway_seconds
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str, str], Verified] = {}

    def get(self, token: str, audience: str, typ: str, now: float | None = None) -> Verified | None:
        entry = self._entries.get((token, audience, typ))
        if entry is None:
            return None
        now = time.time() if now is None else now
        if not entry.not_before <= now < entry.expires:
            del self._entries[(token, audience, typ)]
            return None
        return entry

    def put(self, token: str, audience: str, typ: str, claims: dict[str, Any], kid: str) -> None:
        if len(self._entries) >= self.max_entries:
            # The oldest entry goes (dicts keep insertion order): a flood of distinct valid tokens
            # can only make checks slower, never the memory grow.
            del self._entries[next(iter(self._entries))]
        self._entries[(token, audience, typ)] = Verified(
            claims=claims,
            kid=kid,
            not_before=float(claims.get("nbf", 0)) - self.leeway,
            expires=float(claims["exp"]) + self.leeway,
        )

    def __len__(self) -> int:
        return len(self._entries)
