"""How `msashop up` wires mTLS: the `[security]` switch, the children's TLS_DIR, https in the
Prometheus targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msashop.supervisor.config import ConfigError, PlatformConfig, parse_config
from msashop.supervisor.launch import Wiring, child_env
from msashop.supervisor.ports import write_port_map
from msashop.supervisor.prometheus_targets import write_targets


def test_the_security_section_switches_mtls_and_rejects_anything_but_a_boolean() -> None:
    assert parse_config({"security": {"mtls": True}}).mtls is True
    assert parse_config({"security": {"mtls": False}}).mtls is False
    assert parse_config({}).mtls is None  # not said: the environment decides
    with pytest.raises(ConfigError, match="mtls must be true or false"):
        parse_config({"security": {"mtls": "yes"}})
    with pytest.raises(ConfigError, match="unknown key 'tls'"):
        parse_config({"security": {"tls": True}})


def _wiring(tls_dir: Path | None) -> Wiring:
    return Wiring(
        data_dir=Path("/data"),
        ports_file=Path("/data/ports.json"),
        bus_url="nats://127.0.0.1:4333",
        store_url="redis://127.0.0.1:6390/0",
        env="production",
        tls_dir=tls_dir,
    )


def test_every_child_is_told_the_tls_dir_when_mtls_is_on_and_nothing_when_off() -> None:
    on = child_env("order", 9001, _wiring(Path("/data/tls")), PlatformConfig(), {})
    gateway = child_env("gateway", 8000, _wiring(Path("/data/tls")), PlatformConfig(), {})
    off = child_env("order", 9001, _wiring(None), PlatformConfig(), {})

    assert on["MSASHOP_ORDER_TLS_DIR"] == "/data/tls"
    assert gateway["MSASHOP_GATEWAY_TLS_DIR"] == "/data/tls"  # a client of the services
    assert "MSASHOP_ORDER_TLS_DIR" not in off


def test_https_services_are_scraped_over_tls_and_the_plain_gateway_is_not(tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    write_port_map(ports, {"gateway": "http://127.0.0.1:8000", "order": "https://127.0.0.1:9003"})

    groups = json.loads(write_targets(ports, tmp_path).read_text())

    assert groups == [
        {"targets": ["127.0.0.1:8000"], "labels": {"service": "gateway", "instance": "gateway"}},
        {
            "targets": ["127.0.0.1:9003"],
            "labels": {"service": "order", "instance": "order", "__scheme__": "https"},
        },
    ]
