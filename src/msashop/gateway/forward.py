"""The proxied paths (/api/* and the JWKS), answered by raw ASGI code.

FastAPI's endpoint machinery (a Request object, dependency solving, Response classes) and the
layers between the chassis middleware and a route (exception middleware, exit stack, router)
cost the gateway more CPU per request than everything it does itself, and these paths use none
of it. So `ForwardMiddleware` sits just inside the chassis `RequestMiddleware` (request id,
metrics, access log) and answers them there; an AppError becomes the same JSON error answer the
app's handlers give. Everything else (health, metrics, the UI) goes on to FastAPI as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from msashop.chassis import context
from msashop.chassis.auth import SERVICE_TOKEN_HEADER
from msashop.chassis.errors import AppError, NotFound, error_body
from msashop.chassis.service import Service
from msashop.chassis.tracing import note_user
from msashop.gateway.cookies import CookieSessions
from msashop.gateway.cors import Origins
from msashop.gateway.faults import abort_response
from msashop.gateway.headers import RawHeader, upstream_raw
from msashop.gateway.mesh import Mesh
from msashop.gateway.proxy import Upstreams
from msashop.gateway.rate_limiter import RateLimiter, error_headers

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_API_METHODS = frozenset(METHODS)
JWKS_PATH = "/.well-known/jwks.json"
SERVICE_TOKEN = SERVICE_TOKEN_HEADER.encode()


class ClientGone(Exception):
    """The client disconnected before its request body was in."""


class Forwarder:
    """ASGI app: route (traffic rules), check the token, inject faults, forward, stream the answer."""

    def __init__(
        self,
        service: Service,
        upstreams: Upstreams,
        mesh: Mesh,
        rate_limiter: RateLimiter | None = None,
        sessions: CookieSessions | None = None,
    ) -> None:
        self.service = service
        self.upstreams = upstreams
        self.mesh = mesh
        self.rate_limiter = rate_limiter  # None: MSASHOP_RATE_LIMITS=off
        # The web UI's cookie session (cookies.py); the default allows no other origin.
        self.sessions = sessions or CookieSessions(service.verifier, Origins(()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The raw path, so percent-encoded ids reach the service exactly as the client wrote them.
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        method: str = scope["method"]
        incoming: list[RawHeader] = scope["headers"]
        plan = self.mesh.plan(method, raw_path.decode("latin-1"), _HeaderLookup(incoming))
        if plan is None:
            raise NotFound(f"no service serves {scope['path']}")
        authorization, cookie = b"", False
        for name, value in incoming:  # ASGI header names are lower case
            if name == b"authorization" and not authorization:
                authorization = value
            elif name == b"cookie":
                cookie = True
        # Checked here to keep bad tokens at the edge; the service checks it again (zero trust).
        token = _bearer(authorization.decode("latin-1"))
        try:
            if cookie:  # the access cookie when no bearer came, CSRF checked (cookies.py)
                principal, incoming = await self.sessions.resolve(method, raw_path, incoming, token)
            else:
                principal = await self.service.verifier.verify(token) if token else None
        except AppError:
            if self.rate_limiter is not None:  # a bad token is counted too (as anonymous)
                await self.rate_limiter.enforce(scope, plan.service, None, send)
            raise
        if principal is not None:
            note_user(principal.user_id)  # on the request's span and log lines
        if self.rate_limiter is not None:  # RateLimited (429), or an answer with X-RateLimit-*
            send = await self.rate_limiter.enforce(scope, plan.service, principal, send)
        fault = self.mesh.faults(plan)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.abort is not None:
            await abort_response(fault.abort, plan.service)(scope, receive, send)
            return
        try:
            body = await _body(receive)
        except ClientGone:
            return
        client = scope.get("client")
        forwarded = upstream_raw(
            incoming,
            principal=principal,
            request_id=context.request_id.get(),
            client_ip=client[0] if client else None,
            proto=scope.get("scheme", "http"),
        )
        # The gateway's service token for this service: X-User-Id counts there only alongside it.
        tokens = self.service.tokens
        if tokens is not None and (service_token := await tokens.get(plan.service)) is not None:
            forwarded.append((SERVICE_TOKEN, service_token.encode()))
        query: bytes = scope.get("query_string", b"")
        await self.upstreams.forward(self.service.discovery, plan, method, query, forwarded, body, send)


async def _body(receive: Receive) -> bytes:
    """The request body, held whole so a retry can send it again (as Envoy buffers for retries).

    Its size is bounded before it gets here: the chassis BodyLimitMiddleware, outside this one,
    answers 413 for a declared or counted length past `max_body_bytes` (1 MiB).
    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if not body and not message.get("more_body", False):
            return bytes(chunk)  # the usual case: all of it in one message
        body += chunk
        if not message.get("more_body", False):
            return bytes(body)


class _HeaderLookup(Mapping[str, str]):
    """The request's headers by lower-case name (the first value), decoded only when a header
    match in the traffic rules asks for one."""

    def __init__(self, raw: list[RawHeader]) -> None:
        self.raw = raw

    def __getitem__(self, name: str) -> str:
        key = name.lower().encode("latin-1")
        for found, value in self.raw:
            if found == key:
                return value.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name.decode("latin-1") for name, _ in self.raw))

    def __len__(self) -> int:
        return len({name for name, _ in self.raw})


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


class _ForwardRoute(Route):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The metrics' and access log's route label; FastAPI's router sets it for its own routes only.
        scope["route"] = self
        await super().handle(scope, receive, send)


class ForwardMiddleware:
    """Answers the proxied paths before FastAPI's routing; everything else passes through."""

    def __init__(self, app: ASGIApp, forwarder: Forwarder, api: Route, jwks: Route) -> None:
        self.app = app
        self.forwarder = forwarder
        self.api, self.jwks = api, jwks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path.startswith("/api/") and method in _API_METHODS:
                route = self.api
            elif path == JWKS_PATH and method in ("GET", "HEAD"):
                route = self.jwks
            else:
                await self.app(scope, receive, send)
                return
            scope["route"] = route  # the request metrics' label
            try:
                await self.forwarder(scope, receive, send)
            except AppError as exc:
                body = error_body(exc.code, exc.message, exc.details)
                headers = error_headers(scope)  # a 429's Retry-After, any answer's X-RateLimit-*
                await JSONResponse(body, status_code=exc.status_code, headers=headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(service: Service, forwarder: Forwarder) -> None:
    """The fast path inside the chassis request middleware, and the routes behind it (reached only
    by other methods, which they answer 405, as FastAPI would)."""
    api = _ForwardRoute("/api/{path:path}", forwarder, methods=METHODS, include_in_schema=False)
    jwks = _ForwardRoute(JWKS_PATH, forwarder, methods=["GET"], include_in_schema=False)
    service.app.router.routes[:0] = [api, jwks]
    # `add_middleware` would put it outside the request middleware (no request id, no metrics):
    # appended to the list, it is the innermost user middleware.
    service.app.user_middleware.append(Middleware(ForwardMiddleware, forwarder=forwarder, api=api, jwks=jwks))
