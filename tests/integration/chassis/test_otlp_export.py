"""The export path for real: a service configured with `otlp_endpoint` sends its spans over
OTLP/HTTP (protobuf) to a receiver, which decodes them as a collector would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from msashop.chassis import tracing
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.paths.append(self.path)
        self.server.content_types.append(self.headers["Content-Type"])
        self.server.requests.append(ExportTraceServiceRequest.FromString(body))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_spans_reach_an_otlp_receiver_with_ids_names_and_resource(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSASHOP_OTLP_ENDPOINT", receiver.url)  # a base URL: /v1/traces is added
    settings = ServiceSettings.load("catalog", data_dir=tmp_path, instance_id="catalog-2", version="v3")
    service = Service(settings, uses_bus=False)
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    service.include_router(router)
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            answer = await client.get("/things/1", headers={"traceparent": CALLER})
        assert answer.status_code == 200
        await asyncio.to_thread(tracing.flush)  # the batch processor sends now, not in 5 s
    finally:
        tracing.pin(None)

    assert receiver.paths == ["/v1/traces"]
    assert receiver.content_types == ["application/x-protobuf"]
    [resource_spans] = receiver.requests[0].resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "catalog"
    assert resource["service.instance.id"] == "catalog-2"
    assert resource["service.version"] == "v3"
    [span] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "GET /things/{thing_id}"
    assert span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert span.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent_span_id.hex() == "00f067aa0ba902b7"
    assert len(span.span_id) == 8
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["http.route"].string_value == "/things/{thing_id}"
    assert attributes["http.response.status_code"].int_value == 200
