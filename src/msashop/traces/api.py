"""HTTP in: the OTLP/HTTP receiver (`POST /v1/traces`, unauthenticated: exporters carry no token,
the store listens on the loopback) and the admin API the page and the CLI read (`/traces`,
`/api/traces` through the gateway: spans carry user ids)."""

from __future__ import annotations

import re
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from msashop.chassis.auth import AdminUser
from msashop.chassis.errors import AppError, BadRequest, NotFound, PayloadTooLarge, UpstreamUnavailable
from msashop.chassis.responses import ADMIN, errors
from msashop.traces import otlp
from msashop.traces.recorder import Recorder
from msashop.traces.store import InvalidFilter, TraceFilter, TraceStore, TraceSummary
from msashop.traces.waterfall import Row, processes, waterfall

receiver = APIRouter()
router = APIRouter(prefix="/traces", tags=["traces"])
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
MAX_LIST = 500


class UnsupportedMediaType(AppError):
    status_code, code = 415, "unsupported_media_type"


class Busy(UpstreamUnavailable):
    """Too many spans waiting to be written: the exporter retries (OTLP: 503 is retryable)."""


def _recorder(request: Request) -> Recorder:
    recorder: Recorder = request.app.state.recorder
    return recorder


async def _body(request: Request, limit: int) -> bytes:
    """The export's bytes, inflated. The bytes sent are bounded by the chassis BodyLimitMiddleware
    (413 past the same `max_body_bytes`); what gzip inflates to is bounded here."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            plain = inflate.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(f"the gzip body is broken: {exc}") from None
        if len(plain) > limit or inflate.unconsumed_tail:
            raise PayloadTooLarge(f"an export is at most {limit} bytes uncompressed")
        return plain
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"content encoding {encoding!r} is not supported (gzip is)")
    return body


@receiver.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export (protobuf or JSON)",
    responses={**errors(400), 413: {}, 415: {}, 503: {}},
)
async def export(request: Request) -> Response:
    recorder = _recorder(request)
    content_type = request.headers.get("content-type", "")
    body = await _body(request, recorder.settings.max_body_bytes)
    try:
        spans = otlp.spans(otlp.decode(body, content_type))
    except otlp.InvalidExport as exc:
        if "unsupported content type" in str(exc):
            raise UnsupportedMediaType(str(exc)) from None
        raise BadRequest(str(exc), code="invalid_otlp") from None
    if not recorder.accept(spans):
        raise Busy("too many spans are waiting to be written; try again shortly")
    answer, media = otlp.encode_response(content_type)
    return Response(answer, media_type=media)


@router.get("", summary="Recent traces, newest first", responses=ADMIN)
async def list_traces(
    request: Request,
    _: AdminUser,
    service: Annotated[str | None, Query(max_length=128, description="only traces touching it")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
    min_duration_ms: Annotated[float, Query(ge=0, le=86_400_000)] = 0,
    errors: Annotated[bool, Query(description="only traces with a failed span")] = False,
    attribute: Annotated[
        str | None, Query(max_length=300, description="`key=value`: some span has this attribute")
    ] = None,
) -> JSONResponse:
    where = TraceFilter(
        service=service or None,
        min_duration_ns=int(min_duration_ms * 1_000_000),
        errors_only=errors,
        attribute=_attribute(attribute) if attribute else None,
        limit=limit,
    )

    def work(store: TraceStore) -> list[TraceSummary]:
        return store.list_traces(where)

    try:
        found = await _recorder(request).read(work)
    except InvalidFilter as exc:
        raise BadRequest(str(exc)) from None
    return JSONResponse({"traces": [summary_json(t) for t in found]})


@router.get("/{trace_id}", summary="One trace: its spans as a waterfall", responses={**ADMIN, **errors(404)})
async def get_trace(request: Request, trace_id: str, _: AdminUser) -> JSONResponse:
    if not _TRACE_ID.fullmatch(trace_id):
        raise BadRequest("a trace id is 32 hex digits")
    spans = await _recorder(request).read(lambda store: store.spans_of(trace_id.lower()))
    if not spans:
        raise NotFound(f"no trace {trace_id.lower()} (never received, or pruned)")
    return JSONResponse(trace_json(trace_id.lower(), waterfall(spans), processes(spans)))


def _attribute(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise BadRequest("attribute is `key=value`, e.g. attribute=order.id=42")
    return key, value


def _ms(ns: int) -> float:
    return round(ns / 1_000_000, 3)


def summary_json(trace: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "root_name": trace.root_name,
        "root_service": trace.root_service,
        "start_ns": trace.start_ns,
        "duration_ms": _ms(trace.duration_ns),
        "span_count": trace.span_count,
        "services": list(trace.services),
        "error": trace.error,
    }


def trace_json(trace_id: str, rows: list[Row], procs: list[dict[str, object]]) -> dict[str, Any]:
    start = min(row.span.start_ns for row in rows)
    end = max(row.span.end_ns for row in rows)
    return {
        "trace_id": trace_id,
        "start_ns": start,
        "duration_ms": _ms(end - start),
        "span_count": len(rows),
        "error": any(row.span.status == "error" for row in rows),
        "processes": procs,
        "spans": [
            {
                "span_id": row.span.span_id,
                "parent_span_id": row.span.parent_span_id or None,
                "parent_found": row.parent_found,
                "depth": row.depth,
                "name": row.span.name,
                "kind": row.span.kind,
                "service": row.span.service,
                "instance": row.span.instance,
                "start_ns": row.span.start_ns,
                "offset_ms": _ms(row.span.start_ns - start),
                "duration_ms": _ms(row.span.duration_ns),
                "status": row.span.status,
                "status_message": row.span.status_message,
                "attributes": row.span.attributes,
                "events": row.span.events,
                "links": row.span.links,
            }
            for row in rows
        ],
    }
