"""Bounded label cardinality: a thousand different ids in a path make one route label value."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY

from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service as create_gateway

REQUESTS = 1000


def requests_labelled(route: str, status: str) -> float:
    labels = {"method": "GET", "route": route, "status_code": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def route_values() -> set[str]:
    return {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "http_requests"
        for sample in metric.samples
        if "route" in sample.labels
    }


async def get_many(service: Service, path: str) -> tuple[set[int], list[str]]:
    ids = [str(uuid.uuid4()) for _ in range(REQUESTS)]
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            statuses = {(await client.get(path.format(id=i))).status_code for i in ids}
    return statuses, ids


async def test_a_thousand_order_ids_make_one_route_label_in_a_service(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    service = Service(ServiceSettings.load("cardinality", data_dir=tmp_path), uses_bus=False)
    service.include_router(router)
    before, values = requests_labelled("/orders/{order_id}", "200"), route_values()

    statuses, ids = await get_many(service, "/orders/{id}")

    assert statuses == {200}
    assert requests_labelled("/orders/{order_id}", "200") - before == REQUESTS
    new = route_values() - values
    assert new <= {"/orders/{order_id}"}, new
    assert not any(i in value for value in route_values() for i in ids)


async def test_a_thousand_order_ids_make_one_route_label_at_the_gateway(tmp_path: Path) -> None:
    """Everything under /api/ is one route at the gateway (`gateway_upstream_requests_total` says
    which service it went to); here no instance is known, so each is a 503."""
    # A thousand requests from one client: over the anonymous rate limit, which is not tested here.
    gateway = create_gateway(GatewaySettings.load("gateway", data_dir=tmp_path, rate_limits=False))
    gateway.discovery = StaticDiscovery({})
    route = "/api/{path:path}"
    before, values = requests_labelled(route, "503"), route_values()

    statuses, ids = await get_many(gateway, "/api/orders/{id}")

    assert statuses == {503}
    assert requests_labelled(route, "503") - before == REQUESTS
    new = route_values() - values
    assert new <= {route}, new
    assert not any(i in value for value in route_values() for i in ids)
