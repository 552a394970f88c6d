"""OTLP export bodies in (protobuf and OTLP/JSON), spans out; a bad body is refused."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from msashop.traces import otlp

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
PARENT = bytes.fromhex("00f067aa0ba902b7")


def export(span: Span, service: str = "order", instance: str = "order-2") -> ExportTraceServiceRequest:
    resource_attributes = [
        KeyValue(key="service.name", value=AnyValue(string_value=service)),
        KeyValue(key="service.instance.id", value=AnyValue(string_value=instance)),
    ]
    request = ExportTraceServiceRequest()
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])
    resource_spans.resource.attributes.extend(resource_attributes)
    request.resource_spans.append(resource_spans)
    return request


def a_span(**overrides: object) -> Span:
    fields: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "parent_span_id": PARENT,
        "name": "POST /orders",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": 1_000,
        "end_time_unix_nano": 5_000,
        "status": Status(code=Status.STATUS_CODE_ERROR, message="answered 500"),
        "attributes": [
            KeyValue(key="http.response.status_code", value=AnyValue(int_value=500)),
            KeyValue(key="ok", value=AnyValue(bool_value=False)),
            KeyValue(
                key="tags",
                value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])),
            ),
        ],
    }
    fields.update(overrides)
    return Span(**fields)  # type: ignore[arg-type]


def test_a_protobuf_export_becomes_span_records() -> None:
    body = export(a_span()).SerializeToString()
    [record] = otlp.spans(otlp.decode(body, "application/x-protobuf"))
    assert record.trace_id == TRACE.hex()
    assert (record.span_id, record.parent_span_id) == (SPAN.hex(), PARENT.hex())
    assert (record.service, record.instance, record.kind) == ("order", "order-2", "server")
    assert (record.status, record.status_message) == ("error", "answered 500")
    assert record.duration_ns == 4_000
    assert record.attributes == {"http.response.status_code": 500, "ok": False, "tags": ["a"]}


def test_an_otlp_json_export_carries_hex_ids() -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "user"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": SPAN.hex(),
                                "name": "GET /users/me",
                                "kind": 2,
                                "startTimeUnixNano": "1000",
                                "endTimeUnixNano": "3000",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [record] = otlp.spans(otlp.decode(json.dumps(body).encode(), "application/json; charset=utf-8"))
    assert (record.trace_id, record.span_id, record.parent_span_id) == (TRACE.hex(), SPAN.hex(), "")
    assert (record.service, record.instance, record.kind, record.duration_ns) == ("user", "", "server", 2_000)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff not protobuf", "application/x-protobuf"),
        (b"{not json", "application/json"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json"),
        (b"{}", "text/plain"),
    ],
)
def test_a_body_that_is_not_an_export_is_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(otlp.InvalidExport):
        otlp.spans(otlp.decode(body, content_type))


def test_a_span_without_valid_ids_is_refused() -> None:
    body = export(a_span(span_id=b"\x00" * 8)).SerializeToString()
    with pytest.raises(otlp.InvalidExport, match="span id"):
        otlp.spans(otlp.decode(body, "application/x-protobuf"))
