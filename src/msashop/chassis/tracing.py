"""OpenTelemetry for one process: its tracer, sampling, export over OTLP/HTTP, and the W3C
`traceparent` strings that carry a trace across HTTP and the bus.

One provider per process (configured by `Service`), resolved at span time through
`current_tracer()`, so instrumentation set up before it (the aiohttp trace config, the engine's
listeners) follows it. Settings (`ServiceSettings`): `tracing` (off: a no-op tracer, nothing
recorded or exported), `otlp_endpoint` (empty: spans are recorded, so logs carry their ids, but
not exported) and `trace_sample_ratio`.

Sampling is parent-based with a trace-id ratio at the root, and a trace the ratio leaves out is
still recorded, not dropped: its spans that end in error are exported anyway, so failures are
always kept whatever the ratio (`_ExportSampledOrFailed`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from msashop.chassis.settings import ServiceSettings

TRACER_NAME = "msashop"
OTLP_TRACES_PATH = "/v1/traces"
_propagator = TraceContextTextMapPropagator()


# --- sampling and export --------------------------------------------------------------------
class KeepErrorsSampler(Sampler):
    """Parent-based, a trace-id ratio at the root (`ParentBased(TraceIdRatioBased(ratio))`'s
    decisions), except that what it leaves out is recorded (not sampled) rather than dropped: those
    spans exist, carry ids for the logs, and are exported when they fail. One class, not the SDK's
    composition of three: it runs for every span (the gateway makes two per request)."""

    _LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        self._sampled = SamplingResult(Decision.RECORD_AND_SAMPLE)
        self._recorded = SamplingResult(Decision.RECORD_ONLY)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            sampled = parent.trace_flags.sampled
            state: TraceState | None = parent.trace_state
        else:
            sampled, state = trace_id & self._LIMIT < self._bound, None
        if attributes or state:
            decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.RECORD_ONLY
            return SamplingResult(decision, attributes, state)
        return self._sampled if sampled else self._recorded  # immutable: shared

    def get_description(self) -> str:
        return f"KeepErrorsSampler{{{self.ratio}}}"


def sampler(ratio: float) -> Sampler:
    return KeepErrorsSampler(ratio)


class _ExportSampledOrFailed(BatchSpanProcessor):
    """Exports the sampled spans, and the failed ones of traces the sampler left out."""

    def on_end(self, span: ReadableSpan) -> None:
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled or span.status.status_code is StatusCode.ERROR:
            # BatchSpanProcessor.on_end would skip an unsampled span: hand it to its queue.
            self._batch_processor.emit(span)


class _SimpleSampledOrFailed(SimpleSpanProcessor):
    """The same rule, exporting at once (tests)."""

    def on_end(self, span: ReadableSpan) -> None:
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled or span.status.status_code is StatusCode.ERROR:
            self.span_exporter.export((span,))


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: a base (`http://collector:4318`) gets `/v1/traces`."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(OTLP_TRACES_PATH) else endpoint + OTLP_TRACES_PATH


def resource(settings: ServiceSettings) -> Resource:
    return Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": settings.version,
            # The id the registry knows this instance by (PlatformDiscovery.me).
            "service.instance.id": settings.instance_id or settings.service_name,
            "deployment.environment.name": settings.env,
        }
    )


def _otlp_session() -> requests.Session | None:
    """The exporter's HTTP session when a CA is named for it (OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE,
    as `msashop up` does for the trace store with mTLS on): one that ignores the environment, or
    requests verifies against REQUESTS_CA_BUNDLE (set on many machines) instead of that CA."""
    named = ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
    if not any(os.environ.get(name) for name in named):
        return None
    session = requests.Session()
    session.trust_env = False
    return session


def build_provider(settings: ServiceSettings, exporter: SpanExporter | None = None) -> TracerProvider:
    """The provider `settings` describe; `exporter` (tests) replaces the OTLP one, exporting at once."""
    provider = TracerProvider(
        sampler=sampler(settings.sample_ratio), resource=resource(settings), shutdown_on_exit=True
    )
    if exporter is not None:
        provider.add_span_processor(_SimpleSampledOrFailed(exporter))
    elif settings.otlp_endpoint:
        otlp = OTLPSpanExporter(
            endpoint=traces_url(settings.otlp_endpoint), timeout=5, session=_otlp_session()
        )
        provider.add_span_processor(_ExportSampledOrFailed(otlp))
    return provider


# --- the process's tracer -------------------------------------------------------------------
@dataclass
class _State:
    tracer: trace.Tracer
    provider: TracerProvider | None = None
    pinned: bool = False  # a test installed its provider: services keep it

    @property
    def enabled(self) -> bool:
        return self.provider is not None


_NO_OP = trace.NoOpTracer()
_state = _State(_NO_OP)


def configure_tracing(settings: ServiceSettings) -> None:
    """Set up this process's tracing from `settings` (`tracing=off` always wins)."""
    if not settings.tracing:
        _install(None)
        return
    if _state.pinned:
        return
    _install(build_provider(settings))


def pin(provider: TracerProvider | None) -> None:
    """Tests: use `provider` (None: no tracing) whatever the services built later configure,
    unless one of them turns tracing off."""
    _install(provider)
    _state.pinned = provider is not None


def _install(provider: TracerProvider | None) -> None:
    old = _state.provider
    _state.provider = provider
    _state.tracer = provider.get_tracer(TRACER_NAME) if provider is not None else _NO_OP
    _state.pinned = False
    if old is not None and old is not provider:
        old.shutdown()


def enabled() -> bool:
    return _state.enabled


def current_tracer() -> trace.Tracer:
    return _state.tracer


def flush(timeout_millis: int = 5000) -> None:
    """Export what is queued (a stopping service's last spans)."""
    if _state.provider is not None:
        _state.provider.force_flush(timeout_millis)


class _FollowingTracer(trace.Tracer):
    """The process's tracer at the time each span starts. `child_only`: no span without a
    current trace (the outbox relay's idle polls and periodic jobs issue SQL outside any)."""

    def __init__(self, *, child_only: bool = False) -> None:
        self.child_only = child_only

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> trace.Span:
        if self.child_only and not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return _state.tracer.start_span(name, context, *args, **kwargs)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        if self.child_only and not trace.get_current_span(context).get_span_context().is_valid:
            yield trace.INVALID_SPAN
            return
        with _state.tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


class FollowingProvider(trace.TracerProvider):
    """For instrumentations that take a provider once: their spans follow `configure_tracing`."""

    def __init__(self, *, child_only: bool = False) -> None:
        self.child_only = child_only

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _FollowingTracer(child_only=self.child_only)


# --- trace context as a string --------------------------------------------------------------
def traceparent_of(span_context: trace.SpanContext) -> str | None:
    """The W3C `traceparent` for a span (what `TraceContextTextMapPropagator` writes)."""
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def current_traceparent() -> str | None:
    return traceparent_of(trace.get_current_span().get_span_context())


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The context a `traceparent` names, as a remote parent; an empty (root) context if none
    or malformed, never the caller's current one."""
    if not traceparent:
        return Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier, context=Context())


def context_from_headers(headers: Sequence[tuple[bytes, bytes]]) -> Context | None:
    """The parent an incoming request names (ASGI raw headers); None: this request starts a trace."""
    traceparent = tracestate = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value.decode("latin-1")
        elif name == b"tracestate":
            tracestate = value.decode("latin-1")
    return context_from(traceparent, tracestate) if traceparent else None


# --- per request ------------------------------------------------------------------------------
def note_user(user_id: str) -> None:
    """The request acts for `user_id`: on its span and on its log lines from here on."""
    structlog.contextvars.bind_contextvars(user_id=user_id)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("user.id", user_id)


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[trace.Span]:
    """A span made current for the block; an exception marks it failed and goes on."""
    tracer = _state.tracer
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as current:
        yield current


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids (hex, as trace UIs show them)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = f"{ctx.trace_id:032x}"
        event_dict["span_id"] = f"{ctx.span_id:016x}"
    return event_dict
