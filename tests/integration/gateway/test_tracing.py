"""The gateway's part of a trace: its server span continues the caller's trace, its own upstream
client (not aiohttp) makes a CLIENT span, and the service receives that span's `traceparent`,
once, whatever trace headers the client sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from msashop.chassis import tracing
from msashop.chassis.settings import ServiceSettings
from tests.integration.gateway.conftest import Gateway, Upstream, serve

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
async def recording_upstream() -> AsyncIterator[tuple[Upstream, list[list[tuple[str, str]]]]]:
    """A product instance that keeps the trace headers of every request it gets."""
    seen: list[list[tuple[str, str]]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append([(k.lower(), v) for k, v in request.headers.items() if k.lower().startswith("trace")])
        status = 503 if request.path.endswith("/down") else 200
        return web.json_response({"instance": "p1"}, status=status)

    runner, url = await serve(answer)
    yield Upstream("p1", url=url), seen
    await runner.cleanup()


async def test_the_service_gets_the_gateway_client_span_as_parent(
    gateway: Gateway,
    recording_upstream: tuple[Upstream, list[list[tuple[str, str]]]],
    tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    tracing.pin(tracing.build_provider(ServiceSettings.load("gateway", data_dir=tmp_path), exporter))
    try:
        upstream, seen = recording_upstream
        await gateway.add(upstream)
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=x"}
        assert (await gateway.client.get("/api/products/7", headers=headers)).status_code == 200
        assert (await gateway.client.post("/api/products/down")).status_code == 503
    finally:
        tracing.pin(None)

    by_name = {span.name: span for span in exporter.get_finished_spans()}
    server, client, failed = by_name["GET /api/{path:path}"], by_name["GET product"], by_name["POST product"]
    assert (server.kind, client.kind) == (SpanKind.SERVER, SpanKind.CLIENT)
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.parent is not None and server.parent.span_id == int(CALLER_SPAN, 16)
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    # Exactly the client span's context reaches the service; the client's tracestate does not.
    assert seen[0] == [("traceparent", tracing.traceparent_of(client.context))]
    assert failed.status.status_code is StatusCode.ERROR  # the service answered 503
