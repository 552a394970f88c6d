"""A payment service on a temporary SQLite file, fed through an in-memory bus."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.messaging_tables import outbox
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.contracts.envelope import Envelope, wrap
from msashop.contracts.events import Payload
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service


class PaymentApp:
    def __init__(self, service: Service, client: httpx.AsyncClient, key: SigningKey) -> None:
        self.service = service
        self.client = client
        self.key = key
        assert isinstance(service.bus, InMemoryBus)
        self.bus: InMemoryBus = service.bus

    async def deliver(self, payload: Payload, *, event_id: str | None = None) -> Envelope:
        """Put a command on the bus the way the order saga would; the chassis consumes it."""
        envelope = wrap(
            payload, source="order", key=str(getattr(payload, "order_id", "k")), event_id=event_id
        )
        await self.bus.publish(envelope)
        assert self.bus.failures == []
        return envelope

    async def replies(self) -> list[Envelope]:
        """Every event this service queued in its outbox, in order."""
        async with self.service.unit_of_work() as uow:
            rows = await uow.session.execute(sa.select(outbox.c.envelope).order_by(outbox.c.seq))
            found = [Envelope.model_validate_json(raw) for (raw,) in rows]
        return [e for e in found if e.type.startswith("payment.")]

    def auth(self, user_id: str, *roles: str) -> dict[str, str]:
        token, _ = self.key.access_token(user_id, roles or ("customer",))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def payment(tmp_path: Path) -> AsyncIterator[PaymentApp]:
    settings = PaymentSettings.load(
        "payment",
        data_dir=tmp_path,
        provider_delay_seconds=0.3,
        provider_timeout_seconds=0.05,
        provider_backoff_seconds=0.01,
    )
    service = create_service(settings, bus=InMemoryBus())
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            yield PaymentApp(service, client, key)
