"""The web UI's cookie session at the edge: the access token from the `msashop_access` cookie when
no `Authorization: Bearer` came, and the CSRF double submit for cookie-authenticated writes.

The user service sets the cookies (HttpOnly access and refresh tokens, a readable CSRF token; see
services/user/cookies.py). Here:
- A bearer token wins; the access cookie counts only without one.
- An unsafe request (POST, PUT, PATCH, DELETE) that a session cookie could authenticate (the
  access cookie standing in for a bearer, or the refresh cookie, which reaches /api/auth only)
  must carry `X-CSRF-Token` equal to the `msashop_csrf` cookie, and an `Origin`, when it has one,
  on the allow-list or the gateway's own; else 403 `csrf_failed`. Log in and register are exempt
  (no session yet). A cross-site page can make the browser send cookies (SameSite aside) but can
  neither read the CSRF cookie nor set a header without a preflight, which cors.py refuses.
- The service receives the cookie's token as `Authorization: Bearer` and checks it itself (zero
  trust). The access and CSRF cookies stop here; the refresh cookie goes on (the user service
  spends it) and so do cookies that are not ours.
- An access cookie that fails verification (expired, revoked) makes the request anonymous rather
  than a 401: public pages keep working and the refresh call (which the stale cookie rides along
  with) can replace it. Routes that need a user answer 401 themselves.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from msashop.chassis.auth import Principal, TokenVerifier
from msashop.chassis.errors import Forbidden, Unauthorized
from msashop.gateway.cors import Origins, header

RawHeader = tuple[bytes, bytes]

ACCESS_COOKIE = b"msashop_access"
REFRESH_COOKIE = b"msashop_refresh"
CSRF_COOKIE = b"msashop_csrf"
CSRF_HEADER = b"x-csrf-token"
_OURS = b"msashop_"
_STOP_HERE = frozenset({ACCESS_COOKIE, CSRF_COOKIE})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NO_SESSION_YET = frozenset({b"/api/auth/login", b"/api/auth/register"})


@dataclass(slots=True)
class Jar:
    """Our cookies from the request, and its headers with the access and CSRF cookies taken out."""

    access: bytes | None
    refresh: bool
    csrf: bytes | None
    headers: list[RawHeader]


def read(incoming: list[RawHeader]) -> Jar | None:
    """None when no cookie of ours came (the headers stay as they are)."""
    if not any(name == b"cookie" and _OURS in value for name, value in incoming):
        return None
    found: dict[bytes, bytes] = {}
    headers: list[RawHeader] = []
    for name, value in incoming:
        if name != b"cookie" or _OURS not in value:
            headers.append((name, value))
            continue
        kept = []
        for pair in value.split(b";"):  # kept byte for byte: other cookies are not ours to rewrite
            key, _, cookie_value = pair.partition(b"=")
            key = key.strip()
            if key.startswith(_OURS):
                found.setdefault(key, cookie_value.strip())  # the first one: the most specific path
            if key not in _STOP_HERE and pair.strip():
                kept.append(pair)
        if kept:
            headers.append((name, b";".join(kept).strip()))
    return Jar(
        access=found.get(ACCESS_COOKIE) or None,
        refresh=bool(found.get(REFRESH_COOKIE)),
        csrf=found.get(CSRF_COOKIE) or None,
        headers=headers,
    )


class CookieSessions:
    def __init__(self, verifier: TokenVerifier, origins: Origins) -> None:
        self.verifier = verifier
        self.origins = origins

    async def resolve(
        self, method: str, raw_path: bytes, incoming: list[RawHeader], bearer: str | None
    ) -> tuple[Principal | None, list[RawHeader]]:
        """Who the request is for, and the headers to forward (403 `csrf_failed`, 401 for a bad bearer)."""
        jar = read(incoming)
        if jar is None:
            return (await self.verifier.verify(bearer) if bearer else None), incoming
        cookie_auth = bearer is None and jar.access is not None
        if method in UNSAFE and raw_path not in NO_SESSION_YET and (cookie_auth or jar.refresh):
            self._check_csrf(jar, incoming)
        if bearer is not None:
            return await self.verifier.verify(bearer), jar.headers
        if jar.access is None:
            return None, jar.headers
        try:
            principal = await self.verifier.verify(jar.access.decode("latin-1"))
        except Unauthorized:
            return None, jar.headers
        # Any other Authorization scheme gives way to the token the cookie holds.
        forwarded = [h for h in jar.headers if h[0] != b"authorization"]
        forwarded.append((b"authorization", b"Bearer " + jar.access))
        return principal, forwarded

    def _check_csrf(self, jar: Jar, incoming: list[RawHeader]) -> None:
        sent = header(incoming, CSRF_HEADER)
        if not sent or not jar.csrf or not hmac.compare_digest(sent, jar.csrf):
            raise Forbidden("missing or wrong X-CSRF-Token for a cookie session", code="csrf_failed")
        origin = header(incoming, b"origin")
        if origin is not None and not self.origins.allows(origin, header(incoming, b"host")):
            raise Forbidden("this origin may not use the cookie session", code="csrf_failed")
