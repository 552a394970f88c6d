"""The metrics every chassis service exports on /metrics, with the guide's names, labels and
buckets: requests by route template (bounded, whatever the paths), errors by type and code,
and the database connection pool by state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from msashop.chassis.errors import NotFound
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"
GUIDE_BUCKETS = ("0.01", "0.05", "0.1", "0.5", "1.0", "2.0", "5.0", "+Inf")


@dataclass
class Probe:
    service: Service
    client: httpx.AsyncClient

    async def samples(self, name: str) -> list[Sample]:
        text = (await self.client.get("/metrics")).text
        return [
            s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
        ]

    async def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in await self.samples(name) if labels.items() <= s.labels.items())


@pytest.fixture
async def probe(tmp_path: Path) -> AsyncIterator[Probe]:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        if item_id == "missing":
            raise NotFound("no such item")
        if item_id == "boom":
            raise RuntimeError("a bug")
        return {"id": item_id}

    settings = ServiceSettings.load(
        "metricsprobe", data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.sqlite'}"
    )
    service = Service(settings, migrations=MIGRATIONS, uses_bus=False)
    service.include_router(router)
    async with service.app.router.lifespan_context(service.app):
        # A 500 is answered, as in production, rather than raised into the test.
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            yield Probe(service, client)


async def test_a_thousand_distinct_ids_make_one_route_label_value(probe: Probe) -> None:
    # The registry is process-wide and other tests in this worker may use the same route: deltas.
    async def counts() -> tuple[float, float]:
        ok = await probe.value(
            "http_requests_total", method="GET", route="/items/{item_id}", status_code="200"
        )
        bucket = [
            s
            for s in await probe.samples("http_request_duration_seconds_bucket")
            if s.labels["route"] == "/items/{item_id}"
            and s.labels["status_code"] == "200"
            and s.labels["le"] == "+Inf"
        ]
        return ok, sum(s.value for s in bucket)

    before = await counts()
    for n in range(1000):
        assert (await probe.client.get(f"/items/item-{n}")).status_code == 200

    requests = await probe.samples("http_requests_total")
    routes = {s.labels["route"] for s in requests}
    assert "/items/{item_id}" in routes
    assert not [r for r in routes if "item-" in r]
    after = await counts()
    assert (after[0] - before[0], after[1] - before[1]) == (1000, 1000)
    buckets = [
        s
        for s in await probe.samples("http_request_duration_seconds_bucket")
        if s.labels["route"] == "/items/{item_id}" and s.labels["status_code"] == "200"
    ]
    assert tuple(s.labels["le"] for s in buckets) == GUIDE_BUCKETS


async def test_errors_are_counted_by_type_and_code(probe: Probe) -> None:
    before_not_found = await probe.value("errors_total", type="api", code="not_found")
    before_internal = await probe.value("errors_total", type="api", code="internal_error")
    before_500 = await probe.value("errors_total", type="http", code="500")

    assert (await probe.client.get("/items/missing")).status_code == 404
    assert (await probe.client.get("/items/boom")).status_code == 500
    assert (await probe.client.get("/no/such/route")).status_code == 404

    assert await probe.value("errors_total", type="api", code="not_found") == before_not_found + 2
    assert await probe.value("errors_total", type="api", code="internal_error") == before_internal + 1
    assert await probe.value("errors_total", type="http", code="500") == before_500 + 1


async def test_database_connections_are_reported_by_state(probe: Probe) -> None:
    assert probe.service.db is not None
    states = {s.labels["state"] for s in await probe.samples("database_connection_pool_size")}
    assert states == {"active", "idle", "overflow"}
    active = await probe.value("database_connection_pool_size", state="active")
    async with probe.service.db.engine.connect():
        assert await probe.value("database_connection_pool_size", state="active") == active + 1
    assert await probe.value("database_connection_pool_size", state="active") == active
    assert await probe.value("database_connection_pool_size", state="idle") >= 1
