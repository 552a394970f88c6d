"""What the bus tests publish and how they watch it arrive."""

from __future__ import annotations

from msashop.contracts.envelope import Envelope


def message(subject: str, n: int = 0, key: str | None = None) -> Envelope:
    return Envelope(source="test", type=subject, key=key or f"k{n}", data={"n": n})


class Collector:
    """A handler that records what it received."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def __call__(self, envelope: Envelope) -> None:
        self.received.append(envelope)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.received]
