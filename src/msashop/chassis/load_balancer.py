"""Round robin over a service's healthy instances, skipping those that just failed a call.

The instances come from `Discovery.instances(service)` on every pick, so a watch (or a rewritten
ports file) changes the rotation at once. An instance that fails a call (no connection, a
timeout, 502/503/504) is ejected at once, for `base_seconds`, doubled each time it fails again
after coming back (capped at `max_seconds`); a success forgets its record. It comes back when
the time is up, if discovery still lists it. The last instance standing is never ejected: a
service with one instance answering badly is the circuit breaker's business, not the
balancer's, and picking nothing would turn a partial outage into a full one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog

from msashop.chassis.discovery import Discovery, Instance
from msashop.chassis.errors import UpstreamUnavailable

log = structlog.get_logger()


@dataclass
class _Ejection:
    until: float
    times: int


class LoadBalancer:
    def __init__(
        self,
        discovery: Discovery,
        *,
        base_seconds: float = 10.0,
        max_seconds: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.discovery = discovery
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._turns: dict[str, itertools.count[int]] = {}
        self._ejections: dict[str, _Ejection] = {}  # by instance id

    def pick(self, service: str, avoid: Collection[str] = ()) -> Instance:
        """The next instance in turn among those not ejected, preferring ones not in `avoid`
        (ids already tried by this call); UpstreamUnavailable if discovery knows none."""
        listed = self.discovery.instances(service)
        if not listed:
            raise UpstreamUnavailable(f"no healthy instance known for service {service!r}")
        turn = next(self._turns.setdefault(service, itertools.count()))
        rotation = [listed[(turn + k) % len(listed)] for k in range(len(listed))]
        now = self._clock()
        available = [i for i in rotation if not self._ejected(i.id, now)] or rotation
        fresh = [i for i in available if i.id not in avoid]
        return (fresh or available)[0]

    def failed(self, instance: Instance) -> None:
        """Eject `instance` unless it is the last one not ejected."""
        now = self._clock()
        previous = self._ejections.get(instance.id)
        if previous is not None and previous.until > now:
            return  # calls that were under way when it was ejected: one ejection, not many
        others = [
            i
            for i in self.discovery.instances(instance.service)
            if i.id != instance.id and not self._ejected(i.id, now)
        ]
        if not others:
            return
        times = previous.times + 1 if previous else 1
        seconds = min(self.base_seconds * 2.0 ** (times - 1), self.max_seconds)
        self._ejections[instance.id] = _Ejection(until=now + seconds, times=times)
        log.warning("instance.ejected", upstream=instance.service, instance=instance.id, seconds=seconds)

    def succeeded(self, instance: Instance) -> None:
        self._ejections.pop(instance.id, None)

    def ejected(self, service: str) -> list[str]:
        """Ids of the service's listed instances that are skipped now."""
        now = self._clock()
        return [i.id for i in self.discovery.instances(service) if self._ejected(i.id, now)]

    def _ejected(self, instance_id: str, now: float) -> bool:
        ejection = self._ejections.get(instance_id)
        return ejection is not None and ejection.until > now
