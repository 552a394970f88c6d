"""An inventory service on a temporary SQLite file, fed through an in-memory bus."""

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
from msashop.contracts.events import Payload, ProductCreated
from msashop.services.inventory.config import InventorySettings
from msashop.services.inventory.main import create_service


class Inventory:
    def __init__(self, service: Service, client: httpx.AsyncClient, key: SigningKey) -> None:
        self.service = service
        self.client = client
        self.key = key
        assert isinstance(service.bus, InMemoryBus)
        self.bus: InMemoryBus = service.bus

    async def deliver(self, payload: Payload, *, event_id: str | None = None) -> Envelope:
        """Put a message on the bus the way another service would; the chassis consumes it."""
        envelope = wrap(payload, source="test", key=str(getattr(payload, "order_id", "k")), event_id=event_id)
        await self.bus.publish(envelope)
        assert self.bus.failures == []
        return envelope

    async def add_product(self, product_id: str, initial_stock: int) -> None:
        await self.deliver(
            ProductCreated(
                product_id=product_id,
                sku=product_id,
                name=product_id,
                price="1.00",
                initial_stock=initial_stock,
            )
        )

    async def replies(self, subject_prefix: str = "inventory.") -> list[Envelope]:
        """Every event this service queued in its outbox, in order."""
        async with self.service.unit_of_work() as uow:
            rows = await uow.session.execute(sa.select(outbox.c.envelope).order_by(outbox.c.seq))
            found = [Envelope.model_validate_json(raw) for (raw,) in rows]
        return [e for e in found if e.type.startswith(subject_prefix)]

    async def level(self, product_id: str) -> tuple[int, int]:
        body = (await self.client.get(f"/inventory/{product_id}")).json()
        return body["available"], body["reserved"]

    def auth(self, *roles: str) -> dict[str, str]:
        token, _ = self.key.access_token("u1", roles or ("customer",))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    service = create_service(InventorySettings.load("inventory", data_dir=tmp_path), bus=InMemoryBus())
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield Inventory(service, client, key)
