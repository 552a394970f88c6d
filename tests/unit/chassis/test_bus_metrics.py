"""An adapter that cannot count its backlog cheaply still reports its dead letters, by listing them."""

from __future__ import annotations

from prometheus_client import REGISTRY

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.bus_metrics import DLQ_COUNT_LIMIT, CountsBacklog, report_backlog
from msashop.contracts.envelope import Envelope


async def test_dead_letters_are_listed_when_the_adapter_cannot_count_them() -> None:
    bus = InMemoryBus()
    assert not isinstance(bus, CountsBacklog)

    async def refuse(_: Envelope) -> None:
        raise RuntimeError("refused")

    await bus.subscribe("probe.refused", "listing-group", refuse, max_attempts=1)
    await report_backlog(bus, "listing-group")
    assert REGISTRY.get_sample_value("dead_letter_queue_size", {"group": "listing-group"}) == 0

    for n in range(DLQ_COUNT_LIMIT + 5):
        await bus.publish(Envelope(source="test", type="probe.refused", key=f"k{n}", data={}))
    await report_backlog(bus, "listing-group")
    # Listed up to the limit: the gauge reads "at least DLQ_COUNT_LIMIT".
    assert REGISTRY.get_sample_value("dead_letter_queue_size", {"group": "listing-group"}) == DLQ_COUNT_LIMIT
