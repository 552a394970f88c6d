"""The Prometheus targets file the supervisor writes next to the port map (file_sd format)."""

from __future__ import annotations

import json
from pathlib import Path

from msashop.supervisor.ports import write_port_map
from msashop.supervisor.prometheus_targets import write_targets


def test_every_instance_is_a_target_labelled_with_its_service_and_instance(tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    write_port_map(
        ports,
        {
            "gateway": "http://127.0.0.1:8000",
            "product": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
            "order": "http://127.0.0.1:9003",
        },
    )

    path = write_targets(ports, tmp_path)

    assert path == tmp_path / "prometheus" / "targets.json"
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:8000"], "labels": {"service": "gateway", "instance": "gateway"}},
        {"targets": ["127.0.0.1:9003"], "labels": {"service": "order", "instance": "order"}},
        {"targets": ["127.0.0.1:9001"], "labels": {"service": "product", "instance": "product"}},
        {"targets": ["127.0.0.1:9002"], "labels": {"service": "product", "instance": "product-2"}},
    ]
    assert not list(path.parent.glob(".*.tmp"))
