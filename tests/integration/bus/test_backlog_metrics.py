"""The bus backlog the metrics report (chassis/bus_metrics.py), on every adapter that counts it
without reading the messages: messages a group has not handled yet, and its dead letters."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from msashop.chassis.bus_metrics import CountsBacklog, report_backlog
from msashop.contracts.envelope import Envelope
from tests.integration.bus.backends import Backend
from tests.integration.bus.recording import message


async def _eventually(read: object, expected: object, within: float = 15.0) -> None:
    assert callable(read)
    deadline = asyncio.get_running_loop().time() + within
    while (got := await read()) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"got {got}, expected {expected} within {within} s")
        await asyncio.sleep(0.1)


async def test_lag_and_dead_letters_are_counted_and_reported(backend: Backend) -> None:
    bus = backend.make_bus()
    await bus.connect()
    if not isinstance(bus, CountsBacklog):
        pytest.skip(f"{backend.name} reports no lag, and lists its dead letters (see tests/unit/chassis)")
    gate = asyncio.Event()

    async def held(_: Envelope) -> None:
        await gate.wait()

    async def refused(_: Envelope) -> None:
        raise RuntimeError("refused")

    await bus.subscribe("backlog.held", "lagging", held)
    await bus.subscribe("backlog.refused", "failing", refused, max_attempts=1)
    for n in range(5):
        await bus.publish(message("backlog.held", n))
    await bus.publish(message("backlog.refused"))

    await _eventually(lambda: bus.consumer_lag("lagging"), {"backlog.held": 5})
    await _eventually(lambda: bus.dead_letter_count("failing"), 1)
    assert await bus.dead_letter_count("lagging") == 0
    await report_backlog(bus, "failing")
    assert REGISTRY.get_sample_value("dead_letter_queue_size", {"group": "failing"}) == 1
    assert len(await bus.dead_letters("failing")) == 1  # counting read nothing off the queue

    gate.set()
    await _eventually(lambda: bus.consumer_lag("lagging"), {"backlog.held": 0})
    await report_backlog(bus, "lagging")
    assert (
        REGISTRY.get_sample_value("consumer_lag_messages", {"group": "lagging", "subject": "backlog.held"})
        == 0
    )
