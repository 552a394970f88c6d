"""What the registry holds: services, their checks, and the check states (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passing", "warning", "critical"]
STATUSES: tuple[Status, ...] = ("passing", "warning", "critical")
_SEVERITY = {"passing": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class ServiceSpec:
    """A service instance as registered (`PUT /v1/agent/service/register`)."""

    id: str
    name: str
    tags: tuple[str, ...] = ()
    address: str = ""
    port: int = 0
    meta: tuple[tuple[str, str], ...] = ()
    weights: tuple[int, int] = (1, 1)  # (Passing, Warning)
    enable_tag_override: bool = False


@dataclass(frozen=True)
class CheckSpec:
    """A check as registered. `kind` is "http" (the registry probes) or "ttl" (the instance reports)."""

    id: str
    name: str
    kind: Literal["http", "ttl"]
    service_id: str = ""  # "" for a check on the node itself
    http: str = ""
    method: str = "GET"
    header: tuple[tuple[str, tuple[str, ...]], ...] = ()
    interval: float = 0.0  # seconds
    timeout: float = 0.0
    ttl: float = 0.0
    deregister_after: float | None = None  # DeregisterCriticalServiceAfter
    notes: str = ""


@dataclass
class CheckState:
    spec: CheckSpec
    status: Status = "critical"
    output: str = ""
    critical_since: float | None = None  # wall clock; when it last became critical
    ttl_deadline: float | None = None  # wall clock; a TTL check goes critical after it
    create_index: int = 0
    modify_index: int = 0


@dataclass
class ServiceRecord:
    spec: ServiceSpec
    create_index: int = 0
    modify_index: int = 0
    check_ids: list[str] = field(default_factory=list)


def worst(statuses: list[Status]) -> Status:
    """An instance's status: its worst check's; passing when it has none."""
    return max(statuses, key=_SEVERITY.__getitem__, default="passing")


def http_status(code: int) -> Status:
    """Consul's reading of an HTTP check's answer: 2xx passing, 429 warning, anything else critical."""
    if 200 <= code < 300:
        return "passing"
    if code == 429:
        return "warning"
    return "critical"


def default_check_id(service_id: str, position: int, count: int) -> str:
    """Consul's ids for a service's checks: `service:<id>`, or `service:<id>:<n>` when it has several."""
    return f"service:{service_id}" if count == 1 else f"service:{service_id}:{position}"
