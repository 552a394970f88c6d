"""`request_metrics=False` (MSASHOP_REQUEST_METRICS=off): requests are answered and logged, not counted."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from msashop.chassis.metrics import RequestMiddleware, http_requests_total
from msashop.chassis.settings import ServiceSettings


def _count(route: str) -> float:
    return sum(
        s.value
        for metric in http_requests_total.collect()
        for s in metric.samples
        if s.name == "http_requests_total" and s.labels.get("route") == route
    )


async def _hit(route: str, record: bool) -> int:
    app = Starlette(routes=[Route(route, lambda _: PlainTextResponse("ok"))])
    app.add_middleware(RequestMiddleware, record_metrics=record)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for _ in range(3):
            assert (await client.get(route)).status_code == 200
    return int(_count(route))


async def test_requests_are_counted_only_when_the_switch_is_on() -> None:
    assert await _hit("/switch-on", record=True) == 3
    assert await _hit("/switch-off", record=False) == 0


def test_the_switch_is_platform_wide(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MSASHOP_REQUEST_METRICS", "off")
    assert ServiceSettings.load("order").request_metrics is False
    monkeypatch.setenv("MSASHOP_ORDER_REQUEST_METRICS", "on")
    assert ServiceSettings.load("order").request_metrics is True
