"""/ready: every check runs at once within its timeout; a critical one down is 503, a downstream
down only degrades (200)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.db import Database
from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.health import HealthChecker, standard_checks
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings


async def up() -> None:
    return None


async def hangs() -> None:
    await asyncio.sleep(60)


async def fails() -> None:
    raise ConnectionError("connection refused")


class StoppedBroker(InMemoryBus):
    """The in-memory bus whose broker is unreachable, until `start()`."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = True

    async def ping(self) -> None:
        if self.stopped:
            await asyncio.sleep(60)  # a frozen broker: no answer at all


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_every_check_reports_its_status_and_response_time() -> None:
    checker = HealthChecker(timeout=0.5)
    checker.add("database", up)
    checker.add("broker", fails)

    report = await checker.run()

    assert report.status == "down" and report.http_status == 503
    body = report.as_json()
    assert body["checks"]["database"]["status"] == "up"
    assert "error" not in body["checks"]["database"]
    assert body["checks"]["broker"] == {
        "status": "down",
        "response_time_ms": body["checks"]["broker"]["response_time_ms"],
        "error": "ConnectionError: connection refused",
    }
    assert all(isinstance(c["response_time_ms"], float) for c in body["checks"].values())


async def test_checks_run_concurrently_and_a_hung_one_is_down_after_the_timeout() -> None:
    checker = HealthChecker(timeout=0.3)
    for name in ("database", "broker", "store"):
        checker.add(name, hangs)

    started = time.monotonic()
    report = await checker.run()
    took = time.monotonic() - started

    assert took < 0.6, f"three 0.3 s timeouts took {took:.2f} s: not concurrent"
    assert report.status == "down"
    for result in report.checks.values():
        assert result.status == "down" and result.error == "no answer within 0.3 s"
        assert 250 <= result.response_time_ms < 600


async def test_only_non_critical_checks_down_is_degraded_and_200() -> None:
    checker = standard_checks(0.3, database=up, broker=up, downstreams={"user": fails, "product": up})

    report = await checker.run()

    assert (report.status, report.http_status) == ("degraded", 200)
    assert report.checks["user"].status == "down" and report.checks["product"].status == "up"
    assert (await standard_checks(0.3, database=up, downstreams={"user": up}).run()).status == "up"


async def test_the_database_check_is_a_real_select(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}")
    try:
        report = await standard_checks(1.0, database=db.ping).run()
    finally:
        await db.dispose()
    assert report.checks["database"].status == "up"

    port = closed_port_url().rsplit(":", 1)[1]
    gone = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    try:
        report = await standard_checks(1.0, database=gone.ping).run()
    finally:
        await gone.dispose()
    assert report.status == "down" and report.checks["database"].error


async def test_service_ready_is_503_while_its_broker_does_not_answer_then_200(tmp_path: Path) -> None:
    bus = StoppedBroker()
    settings = ServiceSettings.load("readyprobe", data_dir=tmp_path, ready_timeout_seconds=0.3)
    service = Service(settings, bus=bus, downstreams=("user",))
    service.discovery = service.client.discovery = StaticDiscovery({"user": closed_port_url()})
    service.client.balancer.discovery = service.discovery

    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            down = await client.get("/ready")
            bus.stopped = False
            degraded = await client.get("/ready")
            live = await client.get("/health")

    assert down.status_code == 503
    assert down.json()["status"] == "down" and down.json()["service"] == "readyprobe"
    assert down.json()["checks"]["broker"]["error"] == "no answer within 0.3 s"
    # The broker answers; the user service, a downstream, does not: degraded but ready.
    assert degraded.status_code == 200
    body = degraded.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "up"
    assert body["checks"]["user"]["status"] == "down"
    assert live.status_code == 200  # liveness never looks at dependencies
