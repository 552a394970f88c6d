"""The gateway's own Prometheus metrics (the chassis ones cover every request it answers)."""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Counter

# The request histogram labels every proxied call "/api/{path:path}"; this says where it went:
# `subset` is the version of the instance that answered (`any` when none was chosen),
# `status_code="unavailable"` when it gave no answer (refused, timeout, no instance known).
upstream_requests_total = Counter(
    "gateway_upstream_requests_total",
    "Requests the gateway forwarded, by service, subset (version) and answer",
    ["service", "subset", "status_code"],
)
outlier_ejections_total = Counter(
    "gateway_outlier_ejections_total",
    "Instances taken out of rotation after consecutive 5xx or connection errors",
    ["service"],
)
limit_rejections_total = Counter(
    "gateway_limit_rejections_total",
    "Requests answered 503 at once because the service's connections and pending queue were full",
    ["service"],
)
faults_injected_total = Counter(
    "gateway_faults_injected_total",
    "Faults the traffic config injected, by service and kind (delay, abort)",
    ["service", "fault"],
)
traffic_reloads_total = Counter(
    "gateway_traffic_reloads_total",
    "Times the traffic file was (re)read: ok, or error (the previous rules stay)",
    ["result"],
)


# `labels()` validates and locks on every call; the gateway counts every try, so the children are
# looked up once per label set (bounded: services x versions x statuses).
@lru_cache(maxsize=4096)
def upstream_requests(service: str, subset: str, status_code: str) -> Counter:
    return upstream_requests_total.labels(service, subset, status_code)
