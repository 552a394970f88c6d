"""The whole platform with mTLS on (`[security] mtls = true`): a checkout through the gateway's
plain-HTTP edge reaches CONFIRMED over TLS hops (gateway -> order, order -> product and user,
the registry's checks), while a service port refuses plain HTTP and clients without our
certificate. One platform of its own, started once for the module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from msashop.chassis.tls import TlsFiles, client_context
from tests.e2e.conftest import Platform, ShopClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = Platform(tmp_path_factory.mktemp("mtls"), config="[security]\nmtls = true\n")
    platform.start()
    try:
        yield platform
    finally:
        code = platform.stop()
    assert code == 0, f"msashop up exited with {code} after SIGTERM\n{platform.tail()}"


def _ports(platform: Platform) -> dict[str, str]:
    urls: dict[str, str] = json.loads(platform.ports_file.read_text())
    return urls


def _with_certificate(platform: Platform) -> httpx.Client:
    """A client showing the supervisor's certificate, as `msashop status` does."""
    context = client_context(TlsFiles.of(platform.data_dir / "tls", "supervisor"))
    assert context is not None
    return httpx.Client(verify=context, timeout=5)


def test_a_checkout_through_the_gateway_is_confirmed_with_mtls_between_services(secured: Platform) -> None:
    shop = ShopClient(secured)
    buyer = shop.register_and_login()
    [product] = shop.products_in_stock(1)

    final = shop.checkout(buyer.token, [(product["id"], 1)])

    assert final["status"] == "CONFIRMED", final
    assert final["shipping_cost"] > 0  # order called shipping over TLS


def test_service_ports_speak_only_tls_to_our_certificates_and_the_gateway_stays_plain(
    secured: Platform,
) -> None:
    urls = _ports(secured)
    assert urls["gateway"].startswith("http://")
    assert all(url.startswith("https://") for name, url in urls.items() if name != "gateway"), urls
    order = urls["order"]
    plain = order.replace("https://", "http://")

    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/health", timeout=5)
    no_certificate = httpx.Client(verify=str(secured.data_dir / "tls" / "ca.pem"), timeout=5)
    with no_certificate, pytest.raises(httpx.TransportError):
        no_certificate.get(f"{order}/health")
    with _with_certificate(secured) as client:
        assert client.get(f"{order}/health").status_code == 200


def test_the_registry_checks_every_instance_over_tls_and_status_reads_them(secured: Platform) -> None:
    with _with_certificate(secured) as client:
        entries = client.get(f"{_ports(secured)['registry']}/v1/health/service/order").json()

    [entry] = entries
    assert entry["Service"]["Meta"]["scheme"] == "https"
    assert {check["Status"] for check in entry["Checks"]} == {"passing"}
    status = subprocess.run(
        [sys.executable, "-m", "msashop", "status", "--data-dir", str(secured.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
