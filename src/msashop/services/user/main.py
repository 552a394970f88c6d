"""Composition root of the user service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.services.user import api, handlers
from msashop.services.user.config import UserSettings


def create_service(
    settings: UserSettings | None = None,
    bus: EventBus | None = None,
    store: RevocationStore | None = None,
) -> Service:
    settings = settings or UserSettings.load("user")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus, store=store)
    key = SigningKey.load_or_create(settings.signing_key_path)
    # This service holds the key: it verifies its own tokens without an HTTP call to itself.
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    service.app.state.token_issuer = handlers.TokenIssuer(
        key=key,
        store=service.store,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    service.include_router(api.router)

    if settings.admin_password is not None and settings.admin_password.get_secret_value():
        admin_password = settings.admin_password.get_secret_value()

        async def seed_admin() -> None:
            async with service.unit_of_work() as uow:
                if await handlers.seed_admin(uow, admin_password):
                    await uow.commit()

        service.on_startup(seed_admin)
    return service
