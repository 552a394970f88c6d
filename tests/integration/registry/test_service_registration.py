"""A chassis Service with a registry URL registers itself on start (tags: version, environment;
an HTTP check on its /health) and deregisters on stop; it finds others through the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvicorn

from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from tests.conftest import free_port

from .conftest import RegistryServer, call


async def _passing(registry: RegistryServer, name: str) -> list[str]:
    _, entries = await call(registry.client().health.service, name, passing=True)
    return [e["Service"]["ID"] for e in entries]


async def test_a_service_registers_on_start_and_deregisters_on_stop(
    registry: RegistryServer, tmp_path: Path
) -> None:
    port = free_port()
    settings = ServiceSettings.load(
        "catalog",
        data_dir=tmp_path,
        port=port,
        env="test",
        version="v2",
        instance_id="catalog-2",
        registry_url=registry.url,
        discover_services="catalog",
    )
    service = Service(settings, uses_bus=False)
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):  # registered once its own /health answers
            if await _passing(registry, "catalog") == ["catalog-2"]:
                break
            await asyncio.sleep(0.05)
        _, entries = await call(registry.client().health.service, "catalog", passing=True)
        [entry] = entries
        assert set(entry["Service"]["Tags"]) == {"v2", "test"}
        assert entry["Service"]["Port"] == port
        assert [c["Status"] for c in entry["Checks"] if c["CheckID"] != "serfHealth"] == ["passing"]
        for _ in range(100):  # it watches the registry and finds itself there
            if service.discovery.instances("catalog"):
                break
            await asyncio.sleep(0.05)
        [me] = service.discovery.instances("catalog")
        assert (me.id, me.version, me.url) == ("catalog-2", "v2", f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
    assert await _passing(registry, "catalog") == []  # deregistered on the way down
    _, services = await call(registry.client().catalog.services)
    assert "catalog" not in services
