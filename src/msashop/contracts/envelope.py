"""The integration event envelope every message on the bus carries (SYSTEMS.md row 4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    # The payload's schema version (`Payload.version`, "major.minor"; see contracts/README.md).
    version: str = "1.0"


class Envelope(BaseModel):
    """One event or command. `type` is also the bus subject, `key` the partition key.

    `traceparent` is the W3C trace context of the request that caused the message.
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    source: str
    type: str
    key: str
    timestamp: datetime = Field(default_factory=_now)
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=Metadata)
    traceparent: str | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def deterministic_id(*parts: str) -> str:
    """An event id derived from its cause, so re-sending the same command dedupes downstream."""
    return uuid.uuid5(uuid.NAMESPACE_URL, ":".join(parts)).hex


def wrap(
    payload: Any,
    *,
    source: str,
    key: str,
    cause: Envelope | None = None,
    event_id: str | None = None,
    correlation_id: str | None = None,
) -> Envelope:
    """Put a payload (a `contracts.events.Payload`) in an envelope, chaining ids from its cause."""
    return Envelope(
        id=event_id or uuid.uuid4().hex,
        source=source,
        type=payload.subject,
        key=key,
        correlation_id=correlation_id or (cause.correlation_id if cause else None) or key,
        causation_id=cause.id if cause else None,
        data=payload.model_dump(mode="json"),
        metadata=Metadata(version=payload.version),
        traceparent=cause.traceparent if cause else None,
    )
