"""The gateway's traffic management at run time (what Istio's sidecar does, in-process).

It holds the route table compiled from the traffic file (re-compiled when the file changes) and,
per service, the connection limiter, the outlier detector and the round-robin position. An
instance is chosen from `discovery.instances(service)`: the plan's subset (version) first, then
without the ejected ones, then round robin.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import structlog

from msashop.chassis.discovery import Discovery, Instance
from msashop.chassis.errors import UpstreamUnavailable
from msashop.gateway.faults import FaultAction, decide
from msashop.gateway.limits import ConnectionLimiter
from msashop.gateway.metrics import faults_injected_total, outlier_ejections_total
from msashop.gateway.outlier import OutlierDetector
from msashop.gateway.rules import Plan, RouteTable
from msashop.gateway.traffic import TrafficConfig
from msashop.gateway.traffic_file import TrafficFile

log = structlog.get_logger()


@dataclass
class Upstream:
    """One service's runtime traffic state."""

    limiter: ConnectionLimiter
    outliers: OutlierDetector
    turns: dict[str | None, int] = field(default_factory=dict)  # round robin, per subset


class Mesh:
    def __init__(
        self,
        file: TrafficFile,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file = file
        self.rng = rng or random.Random()
        self.clock = clock
        self._upstreams: dict[str, Upstream] = {}
        self._apply(file.config)

    @property
    def config(self) -> TrafficConfig:
        return self._config

    def plan(self, method: str, path: str, headers: Mapping[str, str]) -> Plan | None:
        """Where this request goes (None: nothing serves the path), with the current rules."""
        if (changed := self.file.poll()) is not None:
            self._apply(changed)
        return self._table.plan(method, path, headers, self.rng)

    def faults(self, plan: Plan) -> FaultAction:
        action = decide(plan.faults, self.rng)
        if action.delay:
            faults_injected_total.labels(service=plan.service, fault="delay").inc()
        if action.abort is not None:
            faults_injected_total.labels(service=plan.service, fault="abort").inc()
        return action

    def upstream(self, service: str) -> Upstream:
        found = self._upstreams.get(service)
        if found is None:
            policy = self._config.policy(service)
            pool = policy.connection_pool
            found = Upstream(
                ConnectionLimiter(pool.tcp.max_connections, pool.http.http1_max_pending_requests),
                OutlierDetector(policy.outlier_detection, self.clock),
            )
            self._upstreams[service] = found
        return found

    def pick(
        self, discovery: Discovery, service: str, subset: str | None, exclude: Collection[str] = ()
    ) -> Instance:
        """The instance for the next call; UpstreamUnavailable when the subset has none."""
        upstream = self.upstream(service)
        everyone = discovery.instances(service)
        upstream.outliers.seen(everyone)
        candidates = everyone if subset is None else [i for i in everyone if i.version == subset]
        if exclude:
            candidates = [i for i in candidates if i.id not in exclude]
        if not candidates:
            which = f"{subset} instance" if subset else "instance"
            details = {"service": service} if subset is None else {"service": service, "subset": subset}
            raise UpstreamUnavailable(f"no {which} of the {service} service is available", details=details)
        # Every candidate ejected: use them anyway (Envoy's panic mode) rather than fail them all.
        healthy = upstream.outliers.available(candidates) or candidates
        turn = upstream.turns.get(subset, 0)
        upstream.turns[subset] = turn + 1
        return healthy[turn % len(healthy)]

    def report(self, service: str, instance: Instance, *, failed: bool) -> None:
        """A call's outcome, for outlier detection (failed: a 5xx or no answer)."""
        if self.upstream(service).outliers.record(instance.id, failed=failed):
            outlier_ejections_total.labels(service=service).inc()
            log.warning("upstream.ejected", upstream=service, instance=instance.id, url=instance.url)

    def _apply(self, config: TrafficConfig) -> None:
        self._config = config
        self._table = RouteTable(config)
        for name, upstream in self._upstreams.items():
            policy = config.policy(name)
            pool = policy.connection_pool
            upstream.limiter.resize(pool.tcp.max_connections, pool.http.http1_max_pending_requests)
            upstream.outliers.policy = policy.outlier_detection
