"""Tracing in the chassis, in-process: server spans named by route template, one trace across a
service-client call and across the bus (outbox, relay, consumer), SQL spans inside a trace only,
the sampler keeping failed spans, the off switch, and trace ids on the log lines."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from aiohttp import web
from fastapi import APIRouter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from msashop.chassis import bus_tracing, metrics, tracing
from msashop.chassis.auth import CurrentUser
from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.service import Service
from msashop.chassis.service_client import ServiceClient
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.signing import SigningKey
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope
from tests.conftest import free_port, wait_until

MIGRATIONS = Path(__file__).parents[2] / "integration" / "chassis" / "migrations"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def settings(tmp_path: Path, name: str, **overrides: Any) -> ServiceSettings:
    return ServiceSettings.load(name, data_dir=tmp_path / name, **overrides)


def record(tmp_path: Path, **overrides: Any) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing.pin(tracing.build_provider(settings(tmp_path, "front", **overrides), exporter))
    return exporter


@pytest.fixture
def spans(tmp_path: Path) -> Iterator[InMemorySpanExporter]:
    exporter = record(tmp_path)
    yield exporter
    tracing.pin(None)


def capture_logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Call after the service is built (it configures logging): its lines land in the buffer."""
    buffer = io.StringIO()
    monkeypatch.delattr(metrics.log, "bind", raising=False)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(buffer))
    return buffer


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def parcels_service(tmp_path: Path, **overrides: Any) -> Service:
    service = Service(settings(tmp_path, "front", **overrides), uses_bus=False)
    router = APIRouter()

    @router.get("/parcels/{parcel_id}")
    async def parcel(parcel_id: str) -> dict[str, str]:
        structlog.get_logger().info("parcel.read", parcel_id=parcel_id)
        return {"id": parcel_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @router.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"id": user.user_id}

    service.include_router(router)
    return service


def client_of(service: Service) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://front")


async def test_server_spans_are_named_by_route_template_and_probes_are_not_traced(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    service = parcels_service(tmp_path)
    async with client_of(service) as client:
        assert (await client.get("/parcels/42")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/health")).status_code == 200

    item = named(spans, "GET /parcels/{parcel_id}")
    assert item.kind is SpanKind.SERVER
    assert item.attributes is not None
    assert item.attributes["http.route"] == "/parcels/{parcel_id}"
    assert item.attributes["http.request.method"] == "GET"
    assert item.attributes["http.response.status_code"] == 200
    assert item.resource.attributes["service.name"] == "front"
    assert item.resource.attributes["service.instance.id"] == "front"
    boom = named(spans, "GET /boom")
    assert boom.status.status_code is StatusCode.ERROR
    assert [s.name for s in spans.get_finished_spans()] == ["GET /parcels/{parcel_id}", "GET /boom"]


async def test_a_service_client_call_continues_the_trace_in_the_called_service(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    back = Service(settings(tmp_path, "back"), uses_bus=False)
    back_router = APIRouter()

    @back_router.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    back.include_router(back_router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(back.app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    front = Service(settings(tmp_path, "front"), uses_bus=False)
    front.client = ServiceClient(StaticDiscovery({"back": f"http://127.0.0.1:{port}"}))
    front_router = APIRouter()

    @front_router.get("/relay")
    async def relay() -> Any:
        return await front.client.get("back", "/ping?secret=s3cret")

    front.include_router(front_router)
    try:
        await wait_until(lambda: server.started)
        async with client_of(front) as client:
            answer = await client.get("/relay", headers={"traceparent": CALLER_TRACEPARENT})
        assert answer.json() == {"pong": "yes"}
    finally:
        await front.client.close()
        server.should_exit = True
        await serving

    entry, call, served = named(spans, "GET /relay"), named(spans, "GET back"), named(spans, "GET /ping")
    assert {f"{s.context.trace_id:032x}" for s in (entry, call, served)} == {CALLER_TRACE}
    assert parent_of(entry) == int("b7ad6b7169203331", 16)  # the caller's span
    assert call.kind is SpanKind.CLIENT and parent_of(call) == entry.context.span_id
    assert served.kind is SpanKind.SERVER and parent_of(served) == call.context.span_id
    assert "s3cret" not in json.dumps(dict(call.attributes or {}))


@pytest.fixture
async def producer_and_consumer(tmp_path: Path) -> AsyncIterator[tuple[Service, list[Envelope]]]:
    """Two services on one in-memory bus: `front` queues counter.bumped in its outbox from a
    request; `back` consumes it (inbox, its own database)."""
    bus = InMemoryBus()
    front = Service(settings(tmp_path, "front"), migrations=MIGRATIONS, bus=bus)
    back = Service(settings(tmp_path, "back"), migrations=MIGRATIONS, bus=bus)
    handled: list[Envelope] = []

    async def on_bumped(envelope: Envelope, uow: UnitOfWork) -> None:
        handled.append(envelope)

    back.on_message("counter.bumped", on_bumped)
    router = APIRouter()

    @router.post("/bump")
    async def bump() -> dict[str, str]:
        async with front.unit_of_work() as uow:
            uow.publish(Envelope(source="front", type="counter.bumped", key="k1"))
            await uow.commit()
        return {"status": "queued"}

    front.include_router(router)
    async with (
        back.app.router.lifespan_context(back.app),
        front.app.router.lifespan_context(front.app),
    ):
        yield front, handled


async def test_an_event_carries_the_trace_through_outbox_relay_and_consumer(
    producer_and_consumer: tuple[Service, list[Envelope]], spans: InMemorySpanExporter
) -> None:
    front, handled = producer_and_consumer
    async with client_of(front) as client:
        assert (await client.post("/bump")).status_code == 200
    await wait_until(lambda: len(handled) == 1)
    await wait_until(lambda: any(s.name == "process counter.bumped" for s in spans.get_finished_spans()))

    request = named(spans, "POST /bump")
    publish = named(spans, "publish counter.bumped")
    process = named(spans, "process counter.bumped")
    assert publish.kind is SpanKind.PRODUCER and parent_of(publish) == request.context.span_id
    assert process.kind is SpanKind.CONSUMER and parent_of(process) == publish.context.span_id
    assert process.context.trace_id == request.context.trace_id
    assert handled[0].traceparent == tracing.traceparent_of(publish.context)
    # SQL: the outbox insert under the request, the inbox claim under the consumer; none of the
    # relay's polls (no trace) made a span of its own.
    sql = [s for s in spans.get_finished_spans() if s.attributes and "db.system" in s.attributes]
    assert sql and all(s.parent is not None for s in sql)
    assert "INSERT front" in {s.name for s in sql}  # the database's name, not its file's path
    assert any(parent_of(s) == request.context.span_id for s in sql)
    assert any(parent_of(s) == process.context.span_id for s in sql)


async def test_a_ratio_of_zero_keeps_failed_spans_only(tmp_path: Path) -> None:
    exporter = record(tmp_path, trace_sample_ratio=0.0)
    try:
        service = parcels_service(tmp_path)
        async with client_of(service) as client:
            await client.get("/parcels/1")
            await client.get("/boom")
    finally:
        tracing.pin(None)
    assert [s.name for s in exporter.get_finished_spans()] == ["GET /boom"]
    assert not exporter.get_finished_spans()[0].context.trace_flags.sampled


async def test_tracing_off_makes_no_spans_and_logs_no_trace_ids(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSASHOP_TRACING", "off")
    service = parcels_service(tmp_path)
    buffer = capture_logs(monkeypatch)
    async with client_of(service) as client:
        answer = await client.get("/parcels/1", headers={"traceparent": CALLER_TRACEPARENT})
        assert answer.status_code == 200

    assert not tracing.enabled()
    assert spans.get_finished_spans() == ()
    lines = lines_of(buffer)
    assert lines and not any("trace_id" in line for line in lines)


async def test_log_lines_carry_the_span_ids_service_instance_and_user(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = parcels_service(tmp_path, instance_id="front-2")
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    token, _ = key.access_token("user-7", ["customer"])
    buffer = capture_logs(monkeypatch)
    async with client_of(service) as client:
        await client.get("/parcels/9")
        await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    item, me = named(spans, "GET /parcels/{parcel_id}"), named(spans, "GET /me")
    lines = lines_of(buffer)
    read = next(line for line in lines if line["event"] == "parcel.read")
    requests = {line["route"]: line for line in lines if line["event"] == "request"}
    item_request, me_request = requests["/parcels/{parcel_id}"], requests["/me"]
    for line in (read, item_request):
        assert line["trace_id"] == f"{item.context.trace_id:032x}"
        assert line["span_id"] == f"{item.context.span_id:016x}"
        assert (line["service"], line["instance_id"]) == ("front", "front-2")
    assert me_request["trace_id"] == f"{me.context.trace_id:032x}"
    assert me_request["user_id"] == "user-7" and "user_id" not in item_request
    assert me.attributes is not None and me.attributes["user.id"] == "user-7"
    assert {"method", "status", "duration_ms"} <= me_request.keys()
    assert token not in buffer.getvalue()


def test_platform_wide_settings_and_the_otlp_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSASHOP_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("MSASHOP_TRACE_SAMPLE_RATIO", "0.25")
    monkeypatch.setenv("MSASHOP_ORDER_TRACE_SAMPLE_RATIO", "0.5")
    order, user = ServiceSettings.load("order"), ServiceSettings.load("user")
    assert order.otlp_endpoint == user.otlp_endpoint == "http://127.0.0.1:4318"
    assert (order.sample_ratio, user.sample_ratio) == (0.5, 0.25)
    assert ServiceSettings.load("x", env="production", trace_sample_ratio=None).sample_ratio == 0.1
    assert tracing.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


async def test_an_rpc_over_the_bus_carries_the_trace_to_the_responder(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    bus = InMemoryBus()
    shipping = Service(settings(tmp_path, "ship"), bus=bus)
    bodies: list[dict[str, Any]] = []

    async def quote(body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(body)
        return {"cost": "4.50"}

    shipping.on_request("quote.calc", quote)
    async with shipping.app.router.lifespan_context(shipping.app):
        with tracing.span("place order"):
            reply = await bus_tracing.request(bus, "quote.calc", {"country": "DE"}, timeout=1)

    assert reply == {"cost": "4.50"} and bodies == [{"country": "DE"}]  # the trace key taken out
    asked, answered = named(spans, "request quote.calc"), named(spans, "respond quote.calc")
    assert parent_of(asked) == named(spans, "place order").context.span_id
    assert answered.kind is SpanKind.SERVER and parent_of(answered) == asked.context.span_id


def test_the_sampler_follows_the_parent_and_the_ratio_and_never_drops() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    half, reference = tracing.sampler(0.5), TraceIdRatioBased(0.5)
    for trace_id in (1, 2**63 - 1, 2**63, 2**64 - 1, 0x1234 << 64 | 2**62):
        expected = reference.should_sample(None, trace_id, "x").decision
        got = half.should_sample(None, trace_id, "x").decision
        assert got is (Decision.RECORD_ONLY if expected is Decision.DROP else expected)

    def under(flags: int) -> Any:
        parent = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(flags))
        return trace.set_span_in_context(NonRecordingSpan(parent))

    never, always = tracing.sampler(0.0), tracing.sampler(1.0)
    assert never.should_sample(under(1), 2**64 - 1, "x").decision is Decision.RECORD_AND_SAMPLE
    assert always.should_sample(under(0), 1, "x").decision is Decision.RECORD_ONLY


async def test_calls_outside_any_trace_make_no_span_and_send_no_traceparent(
    spans: InMemorySpanExporter, aiohttp_headers: list[dict[str, str]], aiohttp_url: str
) -> None:
    client = ServiceClient(StaticDiscovery({"back": aiohttp_url}))
    try:
        await client.get("back", "/anything")  # like a readiness check: no request span around it
        with tracing.span("job"):
            await client.get("back", "/anything")
    finally:
        await client.close()
    assert "traceparent" not in aiohttp_headers[0]
    assert aiohttp_headers[1]["traceparent"].split("-")[1] == f"{named(spans, 'job').context.trace_id:032x}"
    assert [s.name for s in spans.get_finished_spans()] == ["GET back", "job"]


@pytest.fixture
async def aiohttp_headers() -> list[dict[str, str]]:
    return []


@pytest.fixture
async def aiohttp_url(aiohttp_headers: list[dict[str, str]]) -> AsyncIterator[str]:
    """A plain HTTP server (not a chassis service) that keeps the headers it gets."""

    async def answer(request: web.Request) -> web.Response:
        aiohttp_headers.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/anything", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()
