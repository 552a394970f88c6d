"""Prometheus file-based service discovery: `<data-dir>/prometheus/targets.json` from the port map.

One target group per instance, labelled `service` (product) and `instance` (product-2), so
replicas are told apart and summed by service. Prometheus rereads the file when it changes
(deploy/prometheus/prometheus.yml points at it); written atomically, like the port map.

With mTLS on, the services' targets carry `__scheme__: https` (Prometheus scrapes them over TLS;
its job's tls_config shows the `prometheus` certificate `msashop up` issues, see prometheus.yml).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from msashop.supervisor.ports import read_instances

TARGETS_FILE = Path("prometheus") / "targets.json"


def target_groups(instances: Mapping[str, str], services: Mapping[str, str]) -> list[dict[str, Any]]:
    """`instances`: {instance name: base url}; `services`: {instance name: its service}."""
    return [
        {
            "targets": [urlsplit(url).netloc],
            "labels": {"service": services[name], "instance": name}
            | ({"__scheme__": "https"} if url.startswith("https:") else {}),
        }
        for name, url in sorted(instances.items())
    ]


def service_of(instance: str, services: set[str]) -> str:
    """`product-2` -> `product` (replicas.instance_names in reverse); a service's name is itself."""
    if instance in services:
        return instance
    base, _, number = instance.rpartition("-")
    return base if number.isdigit() and base in services else instance


def write_targets(ports_file: Path, data_dir: Path) -> Path:
    """Write the targets of every instance in the port map `ports_file`; returns the file's path."""
    services = {str(k) for k in json.loads(ports_file.read_text())}
    instances = read_instances(ports_file)
    groups = target_groups(instances, {name: service_of(name, services) for name in instances})
    path = data_dir / TARGETS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(groups, indent=2) + "\n")
    os.replace(tmp, path)
    return path
