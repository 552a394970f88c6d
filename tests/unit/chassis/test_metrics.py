"""Request metrics are labelled by the route template, so ids in paths cannot explode cardinality."""

import httpx
from fastapi import APIRouter

from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings


async def test_metrics_label_requests_with_the_route_template_not_the_raw_path(tmp_path) -> None:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    service = Service(ServiceSettings.load("metricsprobe", data_dir=tmp_path), uses_bus=False)
    service.include_router(router)

    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            for item_id in ("42", "43", "a-very-unique-id-9f1c"):
                assert (await client.get(f"/items/{item_id}")).status_code == 200
            assert (await client.get("/no/such/route/7")).status_code == 404
            metrics = (await client.get("/metrics")).text

    lines = [line for line in metrics.splitlines() if line.startswith("http_requests_total{")]
    ours = [line for line in lines if 'route="/items/{item_id}"' in line and 'status_code="200"' in line]
    assert ours and float(ours[0].rsplit(" ", 1)[1]) >= 3
    assert any('route="unmatched"' in line and 'status_code="404"' in line for line in lines)
    assert not any("/items/42" in line or "9f1c" in line or "/no/such" in line for line in lines)


async def test_responses_carry_the_request_id_given_or_a_new_one(tmp_path) -> None:
    service = Service(ServiceSettings.load("ridprobe", data_dir=tmp_path), uses_bus=False)

    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            given = await client.get("/health", headers={"X-Request-Id": "req-123"})
            fresh = await client.get("/health")

    assert given.status_code == 200 and given.json()["status"] == "ok"
    assert given.headers["x-request-id"] == "req-123"
    assert len(fresh.headers["x-request-id"]) >= 16
