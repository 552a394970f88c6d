"""A payment service on a temporary SQLite file, fed through an in-memory bus."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def payment(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    settings = PaymentSettings.load(
        "payment",
        data_dir=tmp_path,
        provider_delay_seconds=0.3,
        provider_timeout_seconds=0.05,
        provider_backoff_seconds=0.01,
    )
    async with running(create_service(settings, bus=InMemoryBus())) as harness:
        yield harness
