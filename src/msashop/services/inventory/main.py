"""Composition root of the inventory service."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts.events import CommitStock, ProductCreated, ReleaseStock, ReserveStock
from msashop.services.inventory import api, handlers
from msashop.services.inventory.config import InventorySettings


def create_service(settings: InventorySettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or InventorySettings.load("inventory")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(api.router)
    service.on_message(ProductCreated.subject, handlers.create_stock_row)
    service.on_message(ReserveStock.subject, handlers.reserve_stock)
    service.on_message(CommitStock.subject, handlers.commit_stock)
    service.on_message(ReleaseStock.subject, handlers.release_stock)
    return service
