"""Fakes for the resilience tests: a clock that moves only when told, a fixed discovery."""

from __future__ import annotations

from msashop.chassis.discovery import Instance


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeDiscovery:
    """`instances` answers what the test put in `listed` (it may change between calls)."""

    def __init__(self, **listed: list[str]) -> None:
        self.listed = {
            service: [Instance(id=i, service=service, url=f"http://{i}") for i in ids]
            for service, ids in listed.items()
        }

    def instances(self, service: str) -> list[Instance]:
        return list(self.listed.get(service, []))

    def url(self, service: str) -> str:
        return self.listed[service][0].url

    def drop(self, service: str, instance_id: str) -> None:
        self.listed[service] = [i for i in self.listed[service] if i.id != instance_id]
