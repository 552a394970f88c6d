"""OTLP/HTTP trace requests in (protobuf, or OTLP's JSON encoding) and the answer out.

The OTLP specification: the body is an `ExportTraceServiceRequest`, the answer an
`ExportTraceServiceResponse` in the same encoding. In OTLP/JSON trace and span ids are hex
strings, not the base64 protobuf's JSON mapping would expect, so they are converted first.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from msashop.traces.model import KINDS, STATUSES, SpanRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class InvalidExport(Exception):
    """A body that is not an OTLP trace export, or a span in it without valid ids."""


def decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    media = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise InvalidExport(f"not an OTLP protobuf trace export: {exc}") from None
        return request
    if media == JSON:
        try:
            data = json.loads(body)
            _hex_ids_to_base64(data)
            json_format.ParseDict(data, request, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError, TypeError, AttributeError) as exc:
            raise InvalidExport(f"not an OTLP JSON trace export: {exc}") from None
        return request
    raise InvalidExport(f"unsupported content type {content_type!r} (use {PROTOBUF} or {JSON})")


def encode_response(content_type: str) -> tuple[bytes, str]:
    """The success answer, in the encoding the request used."""
    response = ExportTraceServiceResponse()
    if content_type.split(";")[0].strip().lower() == JSON:
        return json_format.MessageToJson(response).encode(), JSON
    return response.SerializeToString(), PROTOBUF


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise InvalidExport(f"{key} {value!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def spans(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """Every span of the export, with its process (service and instance) from its resource."""
    return list(_spans(request))


def _spans(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        instance = str(resource.get("service.instance.id") or "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _record(span, service, instance)


def _id(raw: bytes, size: int, what: str, *, optional: bool = False) -> str:
    if optional and not raw:
        return ""
    if len(raw) != size or not any(raw):
        raise InvalidExport(f"a span has an invalid {what} ({binascii.hexlify(raw).decode() or 'empty'})")
    return raw.hex()


def _record(span: Span, service: str, instance: str) -> SpanRecord:
    parent = _id(span.parent_span_id, 8, "parent span id", optional=True)
    return SpanRecord(
        trace_id=_id(span.trace_id, 16, "trace id"),
        span_id=_id(span.span_id, 8, "span id"),
        parent_span_id=parent,
        name=span.name,
        kind=KINDS[span.kind] if 0 <= span.kind < len(KINDS) else "unspecified",
        service=service,
        instance=instance,
        start_ns=span.start_time_unix_nano,
        end_ns=max(span.end_time_unix_nano, span.start_time_unix_nano),
        status=STATUSES[span.status.code] if 0 <= span.status.code < len(STATUSES) else "unset",
        status_message=span.status.message,
        attributes=attributes(span.attributes),
        events=[
            {"name": e.name, "time_ns": e.time_unix_nano, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        links=[
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": attributes(link.attributes),
            }
            for link in span.links
        ],
    )


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP key-values as plain JSON values."""
    found: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        found[pair.key] = value(pair.value)
    return found


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    if kind == "double_value" and not math.isfinite(any_value.double_value):
        return str(any_value.double_value)  # JSON has no NaN or infinity
    return getattr(any_value, kind)
