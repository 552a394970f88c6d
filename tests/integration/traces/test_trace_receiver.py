"""The trace store on a real socket, fed by the OpenTelemetry SDK's own OTLP/HTTP exporter; the
admin API then gives the spans back with their parent links."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from msashop.chassis.signing import SigningKey
from msashop.traces.config import TracesSettings
from msashop.traces.main import create_service
from msashop.traces.recorder import Recorder
from tests.conftest import free_port


@dataclass
class TraceServer:
    url: str
    recorder: Recorder
    key: SigningKey
    db_file: Path

    def admin(self) -> dict[str, str]:
        token, _ = self.key.access_token("admin-1", ("admin",))
        return {"Authorization": f"Bearer {token}"}

    def customer(self) -> dict[str, str]:
        token, _ = self.key.access_token("user-1", ("customer",))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TraceServer]:
    port = free_port()
    settings = TracesSettings.load("traces", data_dir=tmp_path, port=port, env="test", store_url="")
    service = create_service(settings)
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    config = uvicorn.Config(service.app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    for _ in range(500):
        if uv.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    assert settings.db_file is not None
    try:
        yield TraceServer(f"http://127.0.0.1:{port}", service.app.state.recorder, key, settings.db_file)
    finally:
        uv.should_exit = True
        await task


def exporter_of(server: TraceServer, **options: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=5, **options)


def provider(exporter: OTLPSpanExporter, service: str, instance: str) -> TracerProvider:
    resource = Resource.create({"service.name": service, "service.instance.id": instance})
    made = TracerProvider(resource=resource)
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def checkout_in_three_processes(make_exporter: Callable[[], OTLPSpanExporter]) -> str:
    """gateway -> order (publishes) -> inventory (consumes, linked to the publish), each process
    with its own provider and exporter, as on the platform. Returns the trace id (hex)."""
    gateway = provider(make_exporter(), "gateway", "gateway")
    order = provider(make_exporter(), "order", "order-2")
    inventory = provider(make_exporter(), "inventory", "inventory")
    with gateway.get_tracer("t").start_as_current_span("POST /api/orders", kind=SpanKind.SERVER) as root:
        tracer = order.get_tracer("t")
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as handler:
            handler.set_attribute("order.id", "o-42")
            with tracer.start_as_current_span("publish order.created", kind=SpanKind.PRODUCER) as publish:
                published = publish.get_span_context()
    # The consumer's parent is the publish, named by the message's traceparent (a remote parent).
    remote = trace.set_span_in_context(trace.NonRecordingSpan(published))
    consumer = inventory.get_tracer("t").start_span(
        "consume order.created", context=remote, kind=SpanKind.CONSUMER, links=[Link(published)]
    )
    consumer.set_status(Status(StatusCode.ERROR, "out of stock"))
    consumer.end()
    for made in (gateway, order, inventory):
        made.shutdown()
    return f"{root.get_span_context().trace_id:032x}"


async def test_spans_from_the_sdk_exporter_come_back_as_one_trace(server: TraceServer) -> None:
    trace_id = await asyncio.to_thread(checkout_in_three_processes, lambda: exporter_of(server))
    await server.recorder.drained()

    async with httpx.AsyncClient(base_url=server.url, headers=server.admin()) as client:
        listed = (await client.get("/traces")).json()["traces"]
        answer = await client.get(f"/traces/{trace_id}")
    [summary] = listed
    assert summary["trace_id"] == trace_id
    assert (summary["root_name"], summary["root_service"]) == ("POST /api/orders", "gateway")
    assert summary["services"] == ["gateway", "inventory", "order"]
    assert (summary["span_count"], summary["error"]) == (4, True)

    assert answer.status_code == 200
    found = answer.json()
    spans = {s["name"]: s for s in found["spans"]}
    assert [s["name"] for s in found["spans"]] == [
        "POST /api/orders",
        "POST /orders",
        "publish order.created",
        "consume order.created",
    ]
    root, handler, publish, consume = (spans[s["name"]] for s in found["spans"])
    assert root["parent_span_id"] is None and root["depth"] == 0
    assert handler["parent_span_id"] == root["span_id"] and handler["depth"] == 1
    assert publish["parent_span_id"] == handler["span_id"] and publish["depth"] == 2
    assert (handler["service"], handler["instance"], handler["kind"]) == ("order", "order-2", "server")
    assert handler["attributes"] == {"order.id": "o-42"}
    # Across the bus hop: the consumer in another process, child of the publish and linked to it.
    assert (consume["parent_span_id"], consume["depth"]) == (publish["span_id"], 3)
    assert consume["links"] == [{"trace_id": trace_id, "span_id": publish["span_id"], "attributes": {}}]
    assert (consume["status"], consume["status_message"]) == ("error", "out of stock")
    assert all(s["parent_found"] for s in found["spans"])
    assert found["processes"] == [
        {"service": "gateway", "instance": "gateway", "span_count": 1},
        {"service": "inventory", "instance": "inventory", "span_count": 1},
        {"service": "order", "instance": "order-2", "span_count": 2},
    ]


async def test_gzip_exports_are_read_too(server: TraceServer) -> None:
    trace_id = await asyncio.to_thread(
        checkout_in_three_processes, lambda: exporter_of(server, compression=Compression.Gzip)
    )
    await server.recorder.drained()
    async with httpx.AsyncClient(base_url=server.url, headers=server.admin()) as client:
        found = (await client.get(f"/traces/{trace_id}")).json()
    assert found["span_count"] == 4


async def test_an_otlp_json_export_is_answered_in_json(server: TraceServer) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "user"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "GET /users/me",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000002000000",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post("/v1/traces", json=body)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        await server.recorder.drained()
        found = (await client.get("/traces/5b8efff798038103d269b633813fc60c", headers=server.admin())).json()
    assert [(s["name"], s["service"], s["duration_ms"]) for s in found["spans"]] == [
        ("GET /users/me", "user", 2.0)
    ]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xfe not protobuf", {"content-type": "application/x-protobuf"}, 400),
        (b"{", {"content-type": "application/json"}, 400),
        (b"hello", {"content-type": "text/plain"}, 415),
        (b"not gzip", {"content-type": "application/x-protobuf", "content-encoding": "gzip"}, 400),
        (b"x", {"content-type": "application/x-protobuf", "content-encoding": "br"}, 415),
        (
            gzip.compress(b"\0" * (9 * 1024 * 1024)),
            {"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            413,
        ),
    ],
)
async def test_a_bad_export_is_refused_and_stores_nothing(
    server: TraceServer, body: bytes, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post("/v1/traces", content=body, headers=headers)
        assert answer.status_code == status, answer.text
        await server.recorder.drained()
        listed = await client.get("/traces", headers=server.admin())
    assert listed.json() == {"traces": []}


async def test_reading_traces_needs_an_admin(server: TraceServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/traces")).status_code == 401
        assert (await client.get("/traces", headers=server.customer())).status_code == 403
        one = "/traces/5b8efff798038103d269b633813fc60c"
        assert (await client.get(one, headers=server.customer())).status_code == 403
        assert (await client.get(one, headers=server.admin())).status_code == 404
        assert (await client.get("/traces/not-an-id", headers=server.admin())).status_code == 400
        bad_filter = await client.get("/traces", params={"attribute": "no-equals"}, headers=server.admin())
        assert bad_filter.status_code == 400


def test_exports_past_the_queue_bound_are_refused_until_written(tmp_path: Path) -> None:
    from tests.unit.traces.test_trace_store import checkout

    settings = TracesSettings.load("traces", data_dir=tmp_path, max_queued_spans=8, env="test")
    recorder = Recorder(settings)  # not started: nothing drains the queue
    assert recorder.accept(checkout(1)) is True  # 5 spans
    assert recorder.accept(checkout(2)) is False  # 10 > 8: refused whole
    assert recorder.accept(checkout(3)[:3]) is True  # 8


def test_the_store_never_traces_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_TRACING", "true")
    monkeypatch.setenv("MSASHOP_OTLP_ENDPOINT", "http://127.0.0.1:1/v1/traces")
    settings = TracesSettings.load("traces", data_dir=tmp_path)
    assert (settings.tracing, settings.otlp_endpoint) == (False, "")
    assert json.loads(json.dumps({"db": str(settings.db_file)}))["db"].endswith("traces.db")
