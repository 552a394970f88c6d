"""Security headers on every answer the gateway gives: the API (fast path and FastAPI routes), the
storefront, errors (500s included) and health.

One raw ASGI wrapper around `send`, outside everything else (Starlette's error middleware too, so
an unhandled exception's 500 carries them as well). The header lists are built once; a request
costs a scheme check and a list concatenation. A header an answer already has is left alone
(an upstream service's own, say), so nothing is ever sent twice.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RawHeader = tuple[bytes, bytes]

# The storefront loads its own files only: no inline script or style, nothing from elsewhere.
# The same policy suits the JSON answers (nothing to load) and keeps the gateway from ever being
# framed (clickjacking).
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from jsDelivr with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = b"max-age=31536000; includeSubDomains"

COMMON: tuple[RawHeader, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


NAMES = frozenset({name for name, _ in COMMON} | {b"content-security-policy", b"strict-transport-security"})


def _headers(csp: str, *, https: bool) -> list[RawHeader]:
    headers = [*COMMON, (b"content-security-policy", csp.encode())]
    if https:  # over plain HTTP a browser ignores it (RFC 6797), and it would lie about the edge
        headers.append((b"strict-transport-security", HSTS))
    return headers


def over_https(scope: Scope) -> bool:
    """Whether the client's connection was TLS: this server's own, or the TLS proxy in front of
    the gateway saying so (X-Forwarded-Proto; only ever used to add HSTS, which a browser
    ignores over plain HTTP, so a client that lies gains nothing)."""
    if scope.get("scheme") == "https":
        return True
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            return bool(value.split(b",", 1)[0].strip().lower() == b"https")
    return False


class SecurityHeaders:
    """ASGI wrapper: the security headers on every HTTP answer's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # [https][docs]: every combination built once.
        self._sets = {
            (https, docs): _headers(DOCS_CSP if docs else STRICT_CSP, https=https)
            for https in (False, True)
            for docs in (False, True)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._sets[over_https(scope), scope["path"] in DOCS_PATHS]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if any(name.lower() in NAMES for name, _ in headers):  # rare: keep the answer's own
                    present = {name.lower() for name, _ in headers}
                    message["headers"] = [*headers, *(h for h in extra if h[0] not in present)]
                else:
                    message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: Starlette) -> None:
    """Wrap the whole middleware stack, Starlette's ServerErrorMiddleware included (a user
    middleware sits inside it and never sees the 500 it sends)."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
