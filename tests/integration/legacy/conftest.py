"""The legacy monolith and the real product service side by side, each on its own database and
in-memory bus; `sync()` carries the product service's events over to the monolith."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.signing import SigningKey
from msashop.legacy.config import LegacySettings
from msashop.legacy.main import create_service as create_legacy
from msashop.services.product.config import ProductSettings
from msashop.services.product.main import create_service as create_product
from tests.service_harness import ServiceHarness, running


class Pair:
    """The product service (the owner) and the monolith (the copy)."""

    def __init__(self, product: ServiceHarness, legacy: ServiceHarness) -> None:
        self.product = product
        self.legacy = legacy
        self.admin = product.auth_headers("admin-1", "admin")

    async def sync(self) -> int:
        """Deliver every event the product service queued, in order, as its relay would.

        Everything is delivered each time: what the monolith has seen is skipped by its inbox.
        """
        events = await self.product.outbox_events()
        for envelope in events:
            await self.legacy.bus.publish(envelope)
        assert self.legacy.bus.failures == [], self.legacy.bus.failures
        return len(events)


@pytest.fixture
async def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
async def legacy(tmp_path: Path, key: SigningKey) -> AsyncIterator[ServiceHarness]:
    settings = LegacySettings.load("legacy", data_dir=tmp_path / "legacy")
    async with running(
        create_legacy(settings, bus=InMemoryBus()), key=key, harness=ServiceHarness
    ) as harness:
        yield harness


@pytest.fixture
async def pair(tmp_path: Path, key: SigningKey, legacy: ServiceHarness) -> AsyncIterator[Pair]:
    settings = ProductSettings.load("product", data_dir=tmp_path / "product")
    async with running(
        create_product(settings, bus=InMemoryBus()), key=key, harness=ServiceHarness
    ) as product:
        pair = Pair(product, legacy)
        await pair.sync()
        yield pair
