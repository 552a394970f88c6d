"""CORS by an allow-list of origins (GatewaySettings.cors_origins; empty: same-origin only).

Raw ASGI, as the fast path is: a request without `Origin` (same-origin GETs, every non-browser
client) passes with one header scan. A preflight is answered here, never forwarded: 204 with the
CORS headers for an allowed origin, 403 for any other. An allowed origin's other requests get
its exact origin echoed with credentials allowed (a wildcard never goes with cookies); anyone
else's get no CORS headers at all, so the browser keeps the answer from the page.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msashop.chassis.errors import error_body

RawHeader = tuple[bytes, bytes]

ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = b"Authorization, Content-Type, Idempotency-Key, X-CSRF-Token, X-Request-Id"
# What a page on an allowed origin may read from an answer besides the CORS-safelisted ones.
EXPOSE_HEADERS = b"X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
MAX_AGE = b"600"
VARY = (b"vary", b"Origin")


class Origins:
    """The allow-list, and the gateway's own origin (the Host the request was sent to)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(o.rstrip("/").lower().encode("latin-1") for o in allowed)

    def listed(self, origin: bytes) -> bool:
        return origin.lower() in self.allowed

    def allows(self, origin: bytes, host: bytes | None) -> bool:
        """Listed, or the gateway's own origin (any scheme: TLS may end in front of it)."""
        if self.listed(origin):
            return True
        _, sep, authority = origin.partition(b"://")
        return bool(sep) and host is not None and authority.lower() == host.lower()


def header(headers: Iterable[RawHeader], wanted: bytes) -> bytes | None:
    for name, value in headers:
        if name == wanted:
            return value
    return None


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Origins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[RawHeader] = scope["headers"]
        origin = header(headers, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and header(headers, b"access-control-request-method") is not None:
            await self._preflight(origin, header(headers, b"host"), scope, receive, send)
            return
        if not self.origins.listed(origin):
            await self.app(scope, receive, send)  # same-origin, or not allowed: no CORS headers
            return
        added = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", EXPOSE_HEADERS),
            VARY,
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, origin: bytes, host: bytes | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not self.origins.allows(origin, host):
            body = error_body("cors_forbidden", "this origin may not call the API")
            await JSONResponse(body, status_code=403, headers={"Vary": "Origin"})(scope, receive, send)
            return
        answer = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE),
            VARY,
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": answer})
        await send({"type": "http.response.body", "body": b""})
