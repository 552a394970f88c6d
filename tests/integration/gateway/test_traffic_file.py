"""The traffic file is re-read when it changes, at most once per check interval."""

import json
from pathlib import Path

import pytest

from msashop.gateway.traffic_file import TrafficFile, load_traffic

ONE_SERVICE = "[services.product.trafficPolicy.connectionPool.tcp]\nmaxConnections = {}\n"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _max_connections(file: TrafficFile) -> int:
    return file.config.policy("product").connection_pool.tcp.max_connections


def test_a_change_is_seen_at_the_next_check_and_not_before(tmp_path: Path) -> None:
    path, clock = tmp_path / "traffic.toml", Clock()
    path.write_text(ONE_SERVICE.format(7))
    file = TrafficFile(path, check_every=1.0, clock=clock)
    assert file.poll() is not None and _max_connections(file) == 7
    path.write_text(ONE_SERVICE.format(42))
    clock.now = 0.9
    assert file.poll() is None and _max_connections(file) == 7
    clock.now = 1.0
    assert file.poll() is not None and _max_connections(file) == 42
    clock.now = 2.0
    assert file.poll() is None  # unchanged: not parsed again


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    file = TrafficFile(tmp_path / "traffic.toml", check_every=0)
    assert file.poll() is None
    assert _max_connections(file) == 100


def test_an_invalid_file_keeps_the_previous_rules(tmp_path: Path) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(ONE_SERVICE.format(7))
    file = TrafficFile(path, check_every=0)
    file.poll()
    path.write_text(ONE_SERVICE.format(0))  # maxConnections must be at least 1
    assert file.poll() is None and _max_connections(file) == 7
    path.unlink()
    assert file.poll() is not None and _max_connections(file) == 100


def test_a_json_file_has_the_same_keys(tmp_path: Path) -> None:
    path = tmp_path / "traffic.json"
    rules = {"services": {"product": {"http": [{"route": [{"destination": {"subset": "v2"}}]}]}}}
    path.write_text(json.dumps(rules))
    assert load_traffic(path).services["product"].http[0].route[0].destination.subset == "v2"
    path.write_text("{")
    with pytest.raises(ValueError, match=r"traffic\.json"):
        load_traffic(path)
