"""The registry's state on disk: one JSON file, replaced atomically (write, fsync, rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from msashop.registry.model import CheckSpec, CheckState, ServiceRecord, ServiceSpec
from msashop.registry.state import Registry

FORMAT = 1


def _service(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "tags": list(spec.tags),
        "address": spec.address,
        "port": spec.port,
        "meta": dict(spec.meta),
        "weights": list(spec.weights),
        "enable_tag_override": spec.enable_tag_override,
    }


def _check(spec: CheckSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "kind": spec.kind,
        "service_id": spec.service_id,
        "http": spec.http,
        "method": spec.method,
        "header": {name: list(values) for name, values in spec.header},
        "interval": spec.interval,
        "timeout": spec.timeout,
        "ttl": spec.ttl,
        "deregister_after": spec.deregister_after,
        "notes": spec.notes,
    }


def snapshot(registry: Registry) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "index": registry.index,
        "catalog_index": registry.catalog_index,
        "name_indexes": registry.name_indexes,
        "services": [
            {**_service(r.spec), "check_ids": r.check_ids, "indexes": [r.create_index, r.modify_index]}
            for r in registry.services.values()
        ],
        "checks": [
            {
                **_check(c.spec),
                "status": c.status,
                "output": c.output,
                "critical_since": c.critical_since,
                "indexes": [c.create_index, c.modify_index],
            }
            for c in registry.checks.values()
        ],
    }


def restore(registry: Registry, data: dict[str, Any]) -> None:
    """Load a snapshot. A TTL check that was not critical gets a full TTL from now: the instance
    could not report while the registry was down."""
    now = registry.clock()
    registry.index = data["index"]
    registry.catalog_index = data["catalog_index"]
    registry.name_indexes = dict(data["name_indexes"])
    for raw in data["services"]:
        spec = ServiceSpec(
            id=raw["id"],
            name=raw["name"],
            tags=tuple(raw["tags"]),
            address=raw["address"],
            port=raw["port"],
            meta=tuple(sorted(raw["meta"].items())),
            weights=(raw["weights"][0], raw["weights"][1]),
            enable_tag_override=raw["enable_tag_override"],
        )
        created, modified = raw["indexes"]
        registry.services[spec.id] = ServiceRecord(spec, created, modified, list(raw["check_ids"]))
    for raw in data["checks"]:
        check = CheckSpec(
            id=raw["id"],
            name=raw["name"],
            kind=raw["kind"],
            service_id=raw["service_id"],
            http=raw["http"],
            method=raw["method"],
            header=tuple(sorted((k, tuple(v)) for k, v in raw["header"].items())),
            interval=raw["interval"],
            timeout=raw["timeout"],
            ttl=raw["ttl"],
            deregister_after=raw["deregister_after"],
            notes=raw["notes"],
        )
        state = CheckState(check, raw["status"], raw["output"], raw["critical_since"])
        state.create_index, state.modify_index = raw["indexes"]
        if check.kind == "ttl" and state.status != "critical":
            state.ttl_deadline = now + check.ttl
        registry.checks[check.id] = state


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, registry: Registry) -> bool:
        """Fill `registry` from the file; False when there is none yet."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return False
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path}: unknown state format {data.get('format')!r}")
        restore(registry, data)
        return True

    def save(self, registry: Registry) -> None:
        """Write to a temporary file beside the real one, then rename over it: a crash leaves
        either the old state or the new, never half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with temporary.open("w") as handle:
            json.dump(snapshot(registry), handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
