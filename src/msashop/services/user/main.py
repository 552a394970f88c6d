"""Composition root of the user service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from msashop.chassis.bus.port import EventBus
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.service import Service
from msashop.chassis.service_tokens import IssuedToken, ServiceTokens
from msashop.services.user import admin_api, api, handlers, oauth_api, roles_api
from msashop.services.user.clients import ClientRegistry
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
    service.app.state.client_registry = ClientRegistry(settings.clients_path)
    service.app.state.service_token_ttl_seconds = settings.service_token_ttl_seconds
    service.include_router(api.router)
    service.include_router(admin_api.router)
    service.include_router(roles_api.router)
    service.include_router(oauth_api.router)

    async def own_token(audience: str) -> IssuedToken:
        # This service signs service tokens: its own calls need no client secret and no HTTP call.
        ttl = settings.service_token_ttl_seconds
        return IssuedToken(keyring.key.service_token(service.name, audience, ttl_seconds=ttl)[0], ttl)

    service.tokens = service.client.tokens = ServiceTokens(own_token)

    async def check_clients() -> None:
        if not settings.is_development and not settings.clients_path.is_file():
            raise RuntimeError(
                f"no client registry at {settings.clients_path} (clients_file): production refuses "
                "to start without one, no service could get a service token"
            )

    service.on_startup(check_clients)

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
