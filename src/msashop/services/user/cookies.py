"""Cookie sessions for the web UI: the tokens in HttpOnly cookies, never in the page's JavaScript.

A login or refresh asking for `"session": "cookie"` (and a refresh that spent the refresh cookie)
answers with these cookies instead of the tokens in the body:
- `msashop_access`: the access token; HttpOnly, Secure, SameSite=Strict, Path=/, lives as long
  as the token. The gateway turns it into `Authorization: Bearer` (gateway/cookies.py).
- `msashop_refresh`: the refresh token; HttpOnly, Secure, SameSite=Strict, sent to /api/auth
  only (refresh and logout), and lives as long as the refresh token.
- `msashop_csrf`: a random token the page reads and echoes as `X-CSRF-Token` on writes (the
  double submit the gateway checks); Secure, SameSite=Strict, Path=/, not HttpOnly on purpose.
Browsers accept Secure cookies from http://localhost and http://127.0.0.1 (secure contexts), so
`msashop up` on a laptop works; anywhere else the site is served over HTTPS.
"""

from __future__ import annotations

import secrets
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from msashop.services.user.tokens import TokenPair

ACCESS_COOKIE = "msashop_access"
REFRESH_COOKIE = "msashop_refresh"
CSRF_COOKIE = "msashop_csrf"
# Where the browser reaches this service's /auth routes: the gateway's prefix for it.
REFRESH_PATH = "/api/auth"
SessionKind = Literal["token", "cookie"]


def refresh_cookie(request: Request) -> str | None:
    return request.cookies.get(REFRESH_COOKIE) or None


def has_session_cookie(request: Request) -> bool:
    return any(name in request.cookies for name in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE))


def set_session(response: Response, pair: TokenPair, refresh_seconds: int) -> None:
    response.set_cookie(
        ACCESS_COOKIE, pair.access_token, max_age=pair.expires_in, path="/",
        secure=True, httponly=True, samesite="strict",
    )  # fmt: skip
    response.set_cookie(
        REFRESH_COOKIE, pair.refresh_token, max_age=refresh_seconds, path=REFRESH_PATH,
        secure=True, httponly=True, samesite="strict",
    )  # fmt: skip
    # A new CSRF token with every pair: it lives as long as the refresh cookie it guards.
    response.set_cookie(
        CSRF_COOKIE, secrets.token_urlsafe(32), max_age=refresh_seconds, path="/",
        secure=True, httponly=False, samesite="strict",
    )  # fmt: skip


def clear_session(response: Response) -> None:
    """Max-Age=0 with the same name, path and attributes: the browser drops each cookie."""
    for name, path, httponly in (
        (ACCESS_COOKIE, "/", True),
        (REFRESH_COOKIE, REFRESH_PATH, True),
        (CSRF_COOKIE, "/", False),
    ):
        response.set_cookie(name, "", max_age=0, path=path, secure=True, httponly=httponly, samesite="strict")
