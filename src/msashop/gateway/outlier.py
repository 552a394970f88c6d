"""Outlier detection for one service's instances (Istio's outlierDetection, Envoy's consecutive 5xx).

`consecutive5xxErrors` failures in a row (5xx answers or no answer at all) from one instance
eject it for `baseEjectionTime` x the number of times it has been ejected; it comes back by
itself when the time is up. Never more than `maxEjectionPercent` of the service's instances are
out at once (with one instance, none). Each `baseEjectionTime` an instance stays healthy after
coming back takes one off its multiplier, as Envoy does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from msashop.chassis.discovery import Instance
from msashop.gateway.traffic import OutlierDetection


@dataclass
class _Ejection:
    count: int = 0  # times ejected (the multiplier)
    until: float = 0.0  # out of rotation before this moment


class OutlierDetector:
    def __init__(self, policy: OutlierDetection, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._streaks: dict[str, int] = {}
        self._ejections: dict[str, _Ejection] = {}
        self._latest_until = 0.0  # nobody is out after this: lets `available` skip the filter
        self._known: Sequence[Instance] = ()  # the service's instances, as of the last pick

    def seen(self, instances: Sequence[Instance]) -> None:
        """The service's current instances (what `maxEjectionPercent` is a share of)."""
        self._known = instances

    def is_ejected(self, instance_id: str, now: float | None = None) -> bool:
        ejection = self._ejections.get(instance_id)
        return ejection is not None and (self.clock() if now is None else now) < ejection.until

    def available(self, candidates: Sequence[Instance]) -> Sequence[Instance]:
        """The candidates not ejected now."""
        if not self._ejections:
            return candidates
        now = self.clock()
        if now >= self._latest_until:
            return candidates
        return [i for i in candidates if not self.is_ejected(i.id, now)]

    def record(self, instance_id: str, *, failed: bool) -> bool:
        """One call's outcome; True when this failure ejected the instance."""
        if not failed:
            if self._streaks:
                self._streaks.pop(instance_id, None)
            if self._ejections:
                self._forgive(instance_id)
            return False
        threshold = self.policy.consecutive_5xx_errors
        if threshold <= 0:
            return False
        now = self.clock()
        if self.is_ejected(instance_id, now):
            return False  # calls sent before the ejection, failing late: already counted
        streak = self._streaks.get(instance_id, 0) + 1
        self._streaks[instance_id] = streak
        if streak < threshold or not self._room_to_eject(now):
            return False
        ejection = self._ejections.setdefault(instance_id, _Ejection())
        ejection.count += 1
        ejection.until = now + self.policy.base_ejection_time * ejection.count
        self._latest_until = max(self._latest_until, ejection.until)
        self._streaks[instance_id] = 0
        return True

    def _room_to_eject(self, now: float) -> bool:
        out = sum(1 for i in self._known if self.is_ejected(i.id, now))
        return (out + 1) * 100 <= len(self._known) * self.policy.max_ejection_percent

    def _forgive(self, instance_id: str) -> None:
        ejection = self._ejections.get(instance_id)
        if ejection is None or ejection.count == 0:
            return
        now = self.clock()
        if now >= ejection.until + self.policy.base_ejection_time:
            ejection.count -= 1
            ejection.until = now  # the next step down takes another base time
