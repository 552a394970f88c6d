"""Consul's HTTP API, the subset the platform uses: agent registration and TTL updates, health
and catalog reads with blocking queries, status. Errors are plain text, as Consul's are."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from msashop.registry import payload, views
from msashop.registry.agent import RegistryAgent
from msashop.registry.durations import parse_duration
from msashop.registry.model import Status
from msashop.registry.state import NotAllowed, UnknownId

router = APIRouter(prefix="/v1")
_UNSUPPORTED_PARAMS = ("filter", "near", "node-meta", "peer")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _agent(request: Request) -> RegistryAgent:
    agent: RegistryAgent = request.app.state.registry
    return agent


def _error(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    return value is not None and value.lower() not in ("0", "false")


def _check_params(request: Request, agent: RegistryAgent) -> None:
    for name in _UNSUPPORTED_PARAMS:
        if name in request.query_params:
            raise ApiError(400, f"the {name!r} parameter is not supported by this registry")
    dc = request.query_params.get("dc")
    if dc and dc != agent.node.datacenter:
        raise ApiError(500, f"No path to datacenter {dc!r}")


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"Request decode failed: {exc}") from None


async def _blocking(request: Request, agent: RegistryAgent, current: Callable[[], int]) -> None:
    """A blocking query: with `index`, answer once the watched index is past it, or after `wait`
    (default 5 min, at most 10 min, plus up to wait/16 of jitter, as Consul)."""
    raw_index = request.query_params.get("index")
    if not raw_index:
        return
    try:
        index = int(raw_index)
        wait = parse_duration(request.query_params.get("wait"))
    except ValueError as exc:
        raise ApiError(400, f"Invalid blocking query: {exc}") from None
    if index <= 0:
        return
    settings = agent.settings
    seconds = min(wait if wait is not None else settings.default_wait_seconds, settings.max_wait_seconds)
    await agent.changes.wait_past(current, index, seconds + random.uniform(0, seconds / 16))


def _answer(body: Any, index: int) -> JSONResponse:
    return JSONResponse(
        body,
        headers={
            "X-Consul-Index": str(max(index, 1)),
            "X-Consul-KnownLeader": "true",
            "X-Consul-LastContact": "0",
        },
    )


async def _guard(request: Request, work: Callable[[RegistryAgent], Any]) -> Response:
    agent = _agent(request)
    try:
        _check_params(request, agent)
        result = work(agent)
        if hasattr(result, "__await__"):
            result = await result
    except ApiError as exc:
        return _error(exc.status, str(exc))
    except payload.InvalidRequest as exc:
        return _error(400, f"Invalid request: {exc}")
    except NotAllowed as exc:
        return _error(400, str(exc))
    except UnknownId as exc:
        return _error(404, f"Unknown ID {exc.args[0]!r}")
    return result if isinstance(result, Response) else Response(status_code=200)


# --- agent: registration ----------------------------------------------------------------------
@router.put("/agent/service/register")
async def register_service(request: Request) -> Response:
    async def work(agent: RegistryAgent) -> None:
        spec, checks = payload.service_registration(
            await _body(request), min_interval=agent.settings.min_check_interval_seconds
        )
        replace = _flag(request, "replace-existing-checks")
        agent.registry.register_service(spec, checks, replace_existing_checks=replace)

    return await _guard(request, work)


@router.put("/agent/service/deregister/{service_id:path}")
async def deregister_service(service_id: str, request: Request) -> Response:
    return await _guard(request, lambda agent: agent.registry.deregister_service(service_id))


@router.put("/agent/check/register")
async def register_check(request: Request) -> Response:
    async def work(agent: RegistryAgent) -> None:
        min_interval = agent.settings.min_check_interval_seconds
        spec, status = payload.check_registration(await _body(request), min_interval=min_interval)
        agent.registry.register_check(spec, status)

    return await _guard(request, work)


@router.put("/agent/check/deregister/{check_id:path}")
async def deregister_check(check_id: str, request: Request) -> Response:
    return await _guard(request, lambda agent: agent.registry.deregister_check(check_id))


def _ttl(request: Request, check_id: str, status: Status) -> Callable[[RegistryAgent], None]:
    note = request.query_params.get("note", "")
    return lambda agent: agent.registry.ttl_update(check_id, status, note)


@router.put("/agent/check/pass/{check_id:path}")
async def check_pass(check_id: str, request: Request) -> Response:
    return await _guard(request, _ttl(request, check_id, "passing"))


@router.put("/agent/check/warn/{check_id:path}")
async def check_warn(check_id: str, request: Request) -> Response:
    return await _guard(request, _ttl(request, check_id, "warning"))


@router.put("/agent/check/fail/{check_id:path}")
async def check_fail(check_id: str, request: Request) -> Response:
    return await _guard(request, _ttl(request, check_id, "critical"))


@router.put("/agent/check/update/{check_id:path}")
async def check_update(check_id: str, request: Request) -> Response:
    async def work(agent: RegistryAgent) -> None:
        status, output = payload.check_update(await _body(request))
        agent.registry.ttl_update(check_id, status, output)

    return await _guard(request, work)


# --- agent: reads -----------------------------------------------------------------------------
@router.get("/agent/services")
async def agent_services(request: Request) -> Response:
    def work(agent: RegistryAgent) -> Response:
        services = agent.registry.services
        return JSONResponse({sid: views.agent_service(r, agent.node) for sid, r in sorted(services.items())})

    return await _guard(request, work)


@router.get("/agent/service/{service_id:path}")
async def agent_service(service_id: str, request: Request) -> Response:
    def work(agent: RegistryAgent) -> Response:
        record = agent.registry.services.get(service_id)
        if record is None:
            raise UnknownId(service_id)
        return _answer(views.agent_service(record, agent.node), record.modify_index)

    return await _guard(request, work)


@router.get("/agent/checks")
async def agent_checks(request: Request) -> Response:
    def work(agent: RegistryAgent) -> Response:
        services = agent.registry.services
        return JSONResponse(
            {
                cid: views.check(state, agent.node, services.get(state.spec.service_id))
                for cid, state in sorted(agent.registry.checks.items())
            }
        )

    return await _guard(request, work)


@router.get("/agent/self")
async def agent_self(request: Request) -> Response:
    def work(agent: RegistryAgent) -> Response:
        node = agent.node
        return JSONResponse(
            {
                "Config": {"Datacenter": node.datacenter, "NodeName": node.name, "Version": "msashop"},
                "Member": {"Name": node.name, "Addr": node.address, "Port": agent.settings.port, "Status": 1},
                "Meta": {},
            }
        )

    return await _guard(request, work)


# --- health and catalog (blocking) ------------------------------------------------------------
@router.get("/health/service/{name:path}")
async def health_service(name: str, request: Request) -> Response:
    async def work(agent: RegistryAgent) -> Response:
        await _blocking(request, agent, lambda: agent.registry.name_index(name))
        found = agent.registry.instances(
            name, passing=_flag(request, "passing"), tags=request.query_params.getlist("tag")
        )
        body = [views.health_entry(record, checks, agent.node) for record, checks in found]
        return _answer(body, agent.registry.name_index(name))

    return await _guard(request, work)


@router.get("/health/checks/{name:path}")
async def health_checks(name: str, request: Request) -> Response:
    async def work(agent: RegistryAgent) -> Response:
        await _blocking(request, agent, lambda: agent.registry.name_index(name))
        found = agent.registry.instances(name)
        body = [views.check(c, agent.node, record) for record, checks in found for c in checks]
        return _answer(body, agent.registry.name_index(name))

    return await _guard(request, work)


@router.get("/catalog/services")
async def catalog_services(request: Request) -> Response:
    async def work(agent: RegistryAgent) -> Response:
        await _blocking(request, agent, lambda: agent.registry.catalog_index)
        return _answer(agent.registry.service_names(), agent.registry.catalog_index)

    return await _guard(request, work)


@router.get("/catalog/service/{name:path}")
async def catalog_service(name: str, request: Request) -> Response:
    async def work(agent: RegistryAgent) -> Response:
        await _blocking(request, agent, lambda: agent.registry.name_index(name))
        found = agent.registry.instances(name, tags=request.query_params.getlist("tag"))
        body = [views.catalog_entry(record, agent.node) for record, _ in found]
        return _answer(body, agent.registry.name_index(name))

    return await _guard(request, work)


# --- status -----------------------------------------------------------------------------------
@router.get("/status/leader")
async def status_leader(request: Request) -> Response:
    agent = _agent(request)
    return JSONResponse(f"{agent.node.address}:{agent.settings.port}")


@router.get("/status/peers")
async def status_peers(request: Request) -> Response:
    agent = _agent(request)
    return JSONResponse([f"{agent.node.address}:{agent.settings.port}"])
