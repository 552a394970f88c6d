"""mTLS settings of a process (chassis/settings.py, chassis/tls.py) and what a registry entry
says about how to reach an instance."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from msashop.chassis.platform_discovery import PlatformDiscovery
from msashop.chassis.registry import instance_from_entry
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.tls import TlsFiles, client_context, uvicorn_options
from msashop.gateway.config import GatewaySettings
from msashop.supervisor.certificates import ensure


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MSASHOP_"):
            monkeypatch.delenv(name)


def test_without_a_tls_dir_everything_is_plain_http(tmp_path: Path) -> None:
    settings = ServiceSettings.load("order", data_dir=tmp_path, port=9001)

    assert settings.tls_files() is None and not settings.serves_tls
    assert client_context(None) is None and uvicorn_options(None) == {}
    assert PlatformDiscovery(settings).me.url == "http://127.0.0.1:9001"


def test_the_tls_dir_from_the_environment_names_this_services_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ensure(tmp_path, ["order"])
    monkeypatch.setenv("MSASHOP_ORDER_TLS_DIR", str(tmp_path))

    settings = ServiceSettings.load("order", data_dir=tmp_path, port=9001)

    assert settings.tls_files() == TlsFiles(
        tmp_path / "ca.pem", tmp_path / "order.pem", tmp_path / "order.key"
    )
    assert settings.serves_tls
    assert PlatformDiscovery(settings).me.url == "https://127.0.0.1:9001"
    options = uvicorn_options(settings.tls_files())
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED  # a client without our certificate: refused
    assert options["ssl_ca_certs"] == str(tmp_path / "ca.pem")


def test_the_gateway_calls_over_tls_but_its_public_port_stays_plain(tmp_path: Path) -> None:
    ensure(tmp_path, ["gateway"])

    settings = GatewaySettings.load("gateway", data_dir=tmp_path, tls_dir=tmp_path, port=8000)

    assert settings.tls_files() is not None and not settings.serves_tls
    assert PlatformDiscovery(settings).me.url == "http://127.0.0.1:8000"


def test_a_tls_dir_without_this_services_certificate_is_a_clear_error(tmp_path: Path) -> None:
    ensure(tmp_path, ["user"])

    with pytest.raises(ValidationError, match=r"order\.pem.* is missing \(msashop certs rotate order\)"):
        ServiceSettings.load("order", data_dir=tmp_path, tls_dir=tmp_path)


def _entry(meta: dict[str, str] | None) -> dict[str, object]:
    service: dict[str, object] = {"ID": "order-2", "Service": "order", "Address": "127.0.0.1", "Port": 9002}
    if meta is not None:
        service["Meta"] = meta
    return {"Node": {"Address": "10.0.0.1"}, "Service": service}


def test_a_registry_entry_is_reached_over_https_when_it_registered_so() -> None:
    assert instance_from_entry(_entry({"scheme": "https"})).url == "https://127.0.0.1:9002"
    assert instance_from_entry(_entry({})).url == "http://127.0.0.1:9002"
    assert instance_from_entry(_entry(None)).url == "http://127.0.0.1:9002"  # a Consul entry without Meta
