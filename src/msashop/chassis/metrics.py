"""Prometheus metrics with the guide's names, and the middleware that records every request."""

from __future__ import annotations

import random
import time
from functools import lru_cache

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msashop.chassis import context

log = structlog.get_logger()

# The guide's buckets for request latency (its MetricsService's http_request_duration_seconds).
HTTP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5)

http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Duration of HTTP requests in seconds",
    ["method", "route", "status_code"],
    buckets=HTTP_BUCKETS,
)
http_requests_total = Counter(
    "http_requests_total", "Total number of HTTP requests", ["method", "route", "status_code"]
)
errors_total = Counter("errors_total", "Errors by type and code", ["type", "code"])
outbox_pending = Gauge("outbox_pending_events", "Events written to the outbox, not yet published")
outbox_lag_seconds = Gauge("outbox_lag_seconds", "Age of the oldest event in the outbox not yet published")


@lru_cache(maxsize=4096)
def _request_metrics(method: str, route: str, status_code: str) -> tuple[Histogram, Counter]:
    # `labels()` validates and takes a lock on every call; a label set's children never change.
    return (
        http_request_duration_seconds.labels(method, route, status_code),
        http_requests_total.labels(method, route, status_code),
    )


def _new_request_id() -> str:
    # 128 random bits like uuid4().hex, without a system call per request (reseeded after fork).
    return f"{random.getrandbits(128):032x}"


def route_template(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestMiddleware:
    """Request id in and out, per-request log context, metrics and one access log line."""

    def __init__(self, app: ASGIApp, *, record_metrics: bool = True) -> None:
        self.app = app
        self.record_metrics = record_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode()[:128] or _new_request_id()
        auth = headers.get(b"authorization", b"").decode() or None
        rid_token = context.request_id.set(rid)
        auth_token = context.authorization.set(auth)
        structlog.contextvars.bind_contextvars(request_id=rid)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            if self.record_metrics:
                duration, count = _request_metrics(scope["method"], route, str(status))
                duration.observe(elapsed)
                count.inc()
            if status >= 500:
                errors_total.labels(type="http", code=str(status)).inc()
            if route not in ("/health", "/ready", "/metrics"):
                # user_id (bound once the token is checked: tracing.note_user) rides on the
                # context like the request id; headers, tokens and bodies are never logged.
                log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.unbind_contextvars("request_id", "user_id")
            context.request_id.reset(rid_token)
            context.authorization.reset(auth_token)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
