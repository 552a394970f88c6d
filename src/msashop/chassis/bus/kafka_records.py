"""Record-level helpers of the Kafka adapter: topic names, headers, dead-letter records, and
reading a topic from its beginning to its current end without a consumer group."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from msashop.chassis.bus.port import DeadLetter
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

READ_TIMEOUT_SECONDS = 10.0
# Tansu holds a group's first join for about 3 s, and a member that left (LeaveGroup) seems to
# count until its session times out, so a restarted consumer waits ~session + 5 s for its partitions.
CONSUMER_OPTIONS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "session_timeout_ms": 6000,  # the least a real Kafka broker accepts by default
    "heartbeat_interval_ms": 500,
    "metadata_max_age_ms": 5000,
}

# A ConsumerRecord[bytes, bytes]; aiokafka ships no type hints, so mypy sees Any either way.
Record: TypeAlias = ConsumerRecord


def topic_part(name: str) -> str:
    """`name` with every character Kafka refuses in a topic name replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def headers_of(record: Record) -> dict[str, str]:
    return {key: value.decode() for key, value in (record.headers or ())}


def dead_letter_headers(group: str, subject: str, reason: str, attempts: int) -> dict[str, str]:
    return {
        "dlq_id": uuid.uuid4().hex,
        "group": group,
        "subject": subject,
        "reason": reason[:2000],
        "attempts": str(attempts),
        "failed_at": datetime.now(UTC).isoformat(),
    }


def dead_letter_of(record: Record) -> DeadLetter | None:
    headers = headers_of(record)
    try:
        return DeadLetter(
            id=headers["dlq_id"],
            group=headers["group"],
            subject=headers["subject"],
            envelope=Envelope.from_bytes(record.value),
            reason=headers["reason"],
            attempts=int(headers["attempts"]),
            failed_at=datetime.fromisoformat(headers["failed_at"]),
        )
    except (KeyError, ValueError, ValidationError) as exc:
        log.error("bus.malformed_dead_letter", offset=record.offset, error=str(exc))
        return None


async def read_to_end(bootstrap: str, topic: str) -> list[Record]:
    """Every record of `topic` from its beginning up to its end right now, oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **CONSUMER_OPTIONS)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        records: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            for part in batch.values():
                records.extend(r for r in part if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    finally:
        await consumer.stop()
