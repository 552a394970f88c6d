"""Composition root of the legacy monolith (`msashop serve legacy`)."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts.events import ProductCreated, ProductDeleted, ProductUpdated
from msashop.legacy import catalog_api, legacy_api, sync
from msashop.legacy.config import LegacySettings


def create_service(settings: LegacySettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or LegacySettings.load("legacy")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(legacy_api.router)
    service.include_router(catalog_api.router)
    service.on_message(ProductCreated.subject, sync.product_created)
    service.on_message(ProductUpdated.subject, sync.product_updated)
    service.on_message(ProductDeleted.subject, sync.product_deleted)
    return service
