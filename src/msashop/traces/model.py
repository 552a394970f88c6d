"""A span as the store keeps it: OTLP's fields flattened, ids as lower-case hex (as trace UIs show them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root
    name: str
    kind: str  # one of KINDS
    service: str  # the resource's service.name
    instance: str  # the resource's service.instance.id ("" when it has none)
    start_ns: int
    end_ns: int
    status: str = "unset"  # one of STATUSES
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # [{"trace_id", "span_id", "attributes"}]: e.g. a consumer's link to its producer's span.
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)
