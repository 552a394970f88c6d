"""GET /health for the whole platform: every service's /ready, asked at once."""

from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse

from msashop.chassis.discovery import Discovery
from msashop.gateway.proxy import Upstreams
from msashop.gateway.routes import SERVICES


async def aggregate_health(upstreams: Upstreams, discovery: Discovery) -> JSONResponse:
    results = await asyncio.gather(*(upstreams.ready(discovery, name) for name in SERVICES))
    services = dict(zip(SERVICES, results, strict=True))
    healthy = all(state == "ok" for state in services.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "services": services},
        status_code=200 if healthy else 503,
    )
