"""Replicas: how many instances of each service `msashop up` runs (`--replicas product=3,order=2`
or the config file's `[replicas]` table). Every instance gets its own port and registers itself;
they share the service's database and consumer groups, so the broker spreads messages over them
and callers spread requests."""

from __future__ import annotations

from collections.abc import Mapping

MAX_REPLICAS = 16
# One gateway owns the platform's public port.
SINGLE = frozenset({"gateway"})


class ReplicasError(ValueError):
    pass


def parse(text: str) -> dict[str, int]:
    """`"product=3,order=2"` -> {"product": 3, "order": 2}."""
    counts: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise ReplicasError(f"--replicas wants service=count pairs, like product=3; got {item!r}")
        counts[name.strip()] = int(count)
    return counts


def check(counts: Mapping[str, int], services: tuple[str, ...]) -> dict[str, int]:
    for name, count in counts.items():
        if name in SINGLE:
            raise ReplicasError(f"{name} runs once: it owns the platform's port")
        if name not in services:
            raise ReplicasError(f"replicas for unknown service {name!r}; known: {', '.join(services)}")
        if not 1 <= count <= MAX_REPLICAS:
            raise ReplicasError(f"replicas of {name} must be 1..{MAX_REPLICAS}, not {count}")
    return dict(counts)


def instance_names(service: str, count: int) -> list[str]:
    """`product`, `product-2`, `product-3`: the first keeps the service's name (logs, status)."""
    return [service] + [f"{service}-{n}" for n in range(2, count + 1)]
