"""The bus backlog of one service: `dead_letter_queue_size{group}` and `consumer_lag_messages`.

Refreshed every `BACKLOG_INTERVAL` seconds by the service (chassis/service.py). An adapter that
can count cheaply (NATS JetStream: stream and consumer info; RabbitMQ: queue depths) implements
`CountsBacklog`; otherwise the dead letters are listed (at most `DLQ_COUNT_LIMIT`) and the lag
is not reported (Kafka: it would need the group's committed offsets from the broker).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prometheus_client import Gauge

from msashop.chassis.bus.port import EventBus

BACKLOG_INTERVAL = 15.0
# Listing is one round trip per letter on some brokers; "100" reads "100 or more".
DLQ_COUNT_LIMIT = 100

dead_letter_queue_size = Gauge(
    "dead_letter_queue_size", "Messages in the consumer group's dead-letter queue", ["group"]
)
consumer_lag_messages = Gauge(
    "consumer_lag_messages",
    "Messages on the bus the consumer group has not handled yet (queued or in flight)",
    ["group", "subject"],
)


@runtime_checkable
class CountsBacklog(Protocol):
    async def dead_letter_count(self, group: str) -> int:
        """Dead letters of `group` now, without reading them."""

    async def consumer_lag(self, group: str) -> dict[str, int]:
        """{subject: messages not yet handled by `group`} for every subject it consumes."""


async def report_backlog(bus: EventBus, group: str) -> None:
    if isinstance(bus, CountsBacklog):
        dead_letter_queue_size.labels(group).set(await bus.dead_letter_count(group))
        for subject, lag in (await bus.consumer_lag(group)).items():
            consumer_lag_messages.labels(group, subject).set(lag)
        return
    letters = await bus.dead_letters(group, limit=DLQ_COUNT_LIMIT)
    dead_letter_queue_size.labels(group).set(len(letters))
