"""GET /health for the whole platform: the /ready of every instance of every service, asked at once.

CONTRACT: 200 `{"status": "ok", "services": {name: state}}` while every service has at least one
instance that is ready, 503 otherwise. A service's state is `ok` when an instance is up,
`degraded` when the best one serves without a non-critical dependency (a downstream it calls),
else `down: <why>`. `instances` adds each instance's state and, when not up, the names of its
failing checks (names only: this endpoint is public, the errors stay in the service's /ready).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.responses import JSONResponse

from msashop.chassis.discovery import Discovery, Instance
from msashop.gateway.proxy import Upstreams
from msashop.gateway.routes import SERVICES

_RANK = {"ok": 0, "degraded": 1}  # anything else is down


async def aggregate_health(upstreams: Upstreams, discovery: Discovery) -> JSONResponse:
    results = await asyncio.gather(*(_service(upstreams, discovery.instances(name)) for name in SERVICES))
    services = {name: state for name, (state, _) in zip(SERVICES, results, strict=True)}
    healthy = all(state in _RANK for state in services.values())
    return JSONResponse(
        {
            "status": "ok" if healthy else "degraded",
            "services": services,
            "instances": {name: found for name, (_, found) in zip(SERVICES, results, strict=True)},
        },
        status_code=200 if healthy else 503,
    )


async def _service(upstreams: Upstreams, instances: list[Instance]) -> tuple[str, dict[str, Any]]:
    """The service's state (its best instance's) and each instance's."""
    if not instances:
        return "down: no address known", {}
    answers = await asyncio.gather(*(upstreams.ready(i.url) for i in instances))
    found = {i.id: _instance(status, body) for i, (status, body) in zip(instances, answers, strict=True)}
    best = min(found.values(), key=lambda s: _RANK.get(s["state"], len(_RANK)))
    return str(best["state"]), found


def _instance(status: int, body: bytes) -> dict[str, Any]:
    if status == 0:
        return {"state": f"down: {body.decode(errors='replace')}"}
    try:
        report = json.loads(body)
    except ValueError:
        report = {}
    if not isinstance(report, dict):
        report = {}
    checks = report.get("checks")
    failing = (
        sorted(k for k, v in checks.items() if isinstance(v, dict) and v.get("status") == "down")
        if isinstance(checks, dict)
        else []
    )
    if status != 200:
        state = f"down: answered {status}"
    else:
        state = "degraded" if report.get("status") == "degraded" else "ok"
    return {"state": state, "failing": failing} if failing else {"state": state}
