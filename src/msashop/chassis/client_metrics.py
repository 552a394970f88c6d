"""Metrics of the calls a service makes to others (the chassis service client)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

circuit_breaker_state = Gauge(
    "circuit_breaker_state",
    "Circuit breaker state per upstream service: 0 closed, 1 open, 2 half-open",
    ["upstream"],
)
upstream_calls_rejected_total = Counter(
    "upstream_calls_rejected_total",
    "Calls refused before reaching the upstream (reason: circuit_open, bulkhead_full)",
    ["upstream", "reason"],
)
upstream_retries_total = Counter("upstream_retries_total", "Calls to an upstream tried again", ["upstream"])
