"""Composition root of the user service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.service import Service
from msashop.services.user import admin_api, api, handlers
from msashop.services.user.config import UserSettings
from msashop.services.user.keyring import KeyRing
from msashop.services.user.throttle import LoginThrottle
from msashop.services.user.tokens import TokenIssuer


def create_service(
    settings: UserSettings | None = None,
    bus: EventBus | None = None,
    store: RevocationStore | None = None,
) -> Service:
    settings = settings or UserSettings.load("user")
    service = Service(settings, migrations=Path(__file__).parent / "migrations", bus=bus, store=store)
    keyring = KeyRing(settings, service.store)
    service.app.state.keyring = keyring
    service.app.state.token_issuer = TokenIssuer(
        keyring=keyring,
        store=service.store,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    service.app.state.login_throttle = LoginThrottle.from_settings(settings)
    service.app.state.trust_forwarded_for = settings.trust_forwarded_for
    service.include_router(api.router)
    service.include_router(admin_api.router)

    async def start_keyring() -> None:
        await keyring.start(service.unit_of_work)
        # This service holds the ring: it verifies its own tokens without an HTTP call to itself,
        # and rereads the ring (not the network) for a key id it does not know yet.
        service.verifier.set_jwks(keyring.jwks())
        service.verifier.fetch_jwks = keyring.fetch_jwks

    service.on_startup(start_keyring)
    service.every(settings.keyring_reload_seconds, keyring.reload)

    if settings.admin_password is not None and settings.admin_password.get_secret_value():
        admin_password = settings.admin_password.get_secret_value()

        async def seed_admin() -> None:
            async with service.unit_of_work() as uow:
                if await handlers.seed_admin(uow, admin_password):
                    await uow.commit()

        service.on_startup(seed_admin)
    return service
