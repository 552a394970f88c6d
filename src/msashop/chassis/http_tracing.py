"""Spans for HTTP and SQL: the server span of every request (a raw ASGI middleware), the client
spans of the service client (aiohttp's trace config), and a span per SQL statement.

The server span is our own thin middleware rather than opentelemetry-instrumentation-asgi's:
that one names spans after the raw path (unbounded, ids in it) and adds a span per send and
receive, which the gateway, CPU-bound, pays on every request.
"""

from __future__ import annotations

from pathlib import PurePath
from types import SimpleNamespace

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from msashop.chassis import tracing
from msashop.chassis.metrics import route_template

# Probes and scrapes: every few seconds, from the registry and Prometheus, never part of a story.
UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class TracingMiddleware:
    """One SERVER span per request, child of the caller's `traceparent`, named after the route
    template (`GET /orders/{order_id}`), never the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled() or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        parent = tracing.context_from_headers(scope["headers"])
        span = tracing.current_tracer().start_span(method, parent, SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span))
        status = 500  # no answer started: the app failed

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            route = route_template(scope)
            span.update_name(f"{method} {route}")
            if span.is_recording():
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                    }
                )
                if status >= 500:  # a 4xx is the client's doing, not a failed server span
                    span.set_status(Status(StatusCode.ERROR, f"answered {status}"))
            span.end()
            otel_context.detach(token)


def _without_query(url: URL) -> str:
    return str(url.with_query(None))  # a query string may carry a secret: never on a span


def client_trace_configs() -> list[aiohttp.TraceConfig]:
    """For an aiohttp session: a CLIENT span per request made inside a trace, and its
    `traceparent` header. Calls outside any (a readiness probe's checks, background token and
    key fetches) would each be a trace of one span: they are not traced."""
    if not tracing.enabled():
        return []
    return [
        create_trace_config(
            url_filter=_without_query,
            tracer_provider=tracing.FollowingProvider(child_only=True),
            meter_provider=metrics.NoOpMeterProvider(),
        ),
        _named_after_the_service(),  # after: it renames the span the one above made current
    ]


def _named_after_the_service() -> aiohttp.TraceConfig:
    """`GET product` rather than `GET`: the service a call is for, when the caller passed it as
    `trace_request_ctx={"service": ...}` (the service client does)."""

    async def on_request_start(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        asked = ctx.trace_request_ctx
        service = asked.get("service") if isinstance(asked, dict) else None
        span = trace.get_current_span()
        if service and span.is_recording():
            span.update_name(f"{params.method} {service}")
            span.set_attribute("peer.service", service)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    return config


class _EngineTracer(EngineTracer):
    def _operation_name(self, db_name: str | None, statement: object) -> str:
        # SQLite's database "name" is its file path: `SELECT order`, not `SELECT /data/db/order.sqlite`.
        if db_name and "/" in db_name:
            db_name = PurePath(db_name).stem
        name: str = super()._operation_name(db_name, statement)  # type: ignore[no-untyped-call]
        return name


def instrument_engine(engine: AsyncEngine) -> None:
    """A CLIENT span per statement run inside a trace (a request, a message, a publish)."""
    if not tracing.enabled():
        return
    tracer = tracing.FollowingProvider(child_only=True).get_tracer(__name__)
    usage = metrics.NoOpMeter(__name__).create_up_down_counter("db.client.connections.usage")
    _EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def start_client_span(method: str, service: str) -> trace.Span:
    """A CLIENT span for a call made without aiohttp (the gateway's own client), under the
    current span; the caller sends `tracing.traceparent_of` it and ends it with `end_client_span`."""
    return tracing.current_tracer().start_span(
        f"{method} {service}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "peer.service": service},
    )


def end_client_span(span: trace.Span, status: int) -> None:
    """`status` 0: no answer. A 5xx or none is a failed call; a 4xx is the caller's business."""
    if span.is_recording():
        if status:
            span.set_attribute("http.response.status_code", status)
        if not status or status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"answered {status}" if status else "no answer"))
    span.end()
