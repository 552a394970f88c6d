"""The `backend` fixture: every test of the shared suite runs once per entry of backends.BACKENDS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from msashop.chassis.bus.port import EventBus
from tests.integration.bus.backends import BACKENDS, Backend, BackendEntry


@pytest.fixture(params=BACKENDS, ids=[entry.name for entry in BACKENDS])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The broker under test; its `make_bus()` buses are closed after the test."""
    entry: BackendEntry = request.param
    async with entry.open() as opened:
        made: list[EventBus] = []
        make = opened.make_bus

        def tracked() -> EventBus:
            bus = make()
            made.append(bus)
            return bus

        opened.make_bus = tracked
        try:
            yield opened
        finally:
            for bus in made:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(bus.close(), timeout=10)


@pytest.fixture
async def bus(backend: Backend) -> EventBus:
    """One connected bus on the test's namespace."""
    connected = backend.make_bus()
    await connected.connect()
    return connected


@pytest.fixture(scope="session")
def tansu_server() -> Iterator[str]:
    """A Tansu broker (Kafka protocol, memory only) on a free port for the session; its kafka:// URL."""
    from tests.integration.bus.kafka_backend import session_tansu

    yield from session_tansu()
