"""Composition root of the registry: no database, no bus; its state in one file in the data dir."""

from __future__ import annotations

from msashop.chassis.service import Service
from msashop.registry import api
from msashop.registry.agent import RegistryAgent
from msashop.registry.config import RegistrySettings


def create_service(settings: RegistrySettings | None = None) -> Service:
    settings = settings or RegistrySettings.load("registry")
    agent = RegistryAgent(settings)
    service = Service(settings, uses_bus=False)
    service.on_startup(agent.start)
    service.on_shutdown(agent.stop)
    service.app.state.registry = agent
    service.include_router(api.router)
    return service
