"""Composition root of the product service."""

from __future__ import annotations

from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.services.product import api, handlers
from msashop.services.product.config import ProductSettings


def create_service(settings: ProductSettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or ProductSettings.load("product")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus)
    service.include_router(api.router)

    if settings.seed_catalog:

        async def seed() -> None:
            async with service.unit_of_work() as uow:
                if await handlers.seed_catalog(uow):
                    await uow.commit()

        service.on_startup(seed)
    return service
