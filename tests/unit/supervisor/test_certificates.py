"""The platform's CA and its certificates (supervisor/certificates.py): what they say, when they
are renewed, and when mTLS is on."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from msashop.chassis.tls import TlsFiles, client_context, server_context
from msashop.supervisor import certificates

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_service_certificate_is_signed_by_the_ca_and_names_the_service_and_localhost(
    tmp_path: Path,
) -> None:
    issued = certificates.ensure(tmp_path, ["order"], now=NOW)

    files = TlsFiles.of(tmp_path, "order")
    ca, cert = _cert(files.ca), _cert(files.cert)
    cert.verify_directly_issued_by(ca)  # raises when the chain does not hold
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "order"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - NOW == dt.timedelta(days=certificates.LEAF_DAYS)
    # The supervisor's and Prometheus's client certificates come along.
    assert issued == ["order", "supervisor", "prometheus"]


def test_private_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["user"], now=NOW)

    for key in (tmp_path / "ca.key", tmp_path / "user.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_ensure_keeps_current_certificates_and_renews_those_close_to_expiry(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["user", "order"], now=NOW)
    first = _cert(tmp_path / "user.pem").serial_number

    assert certificates.ensure(tmp_path, ["user", "order"], now=NOW + dt.timedelta(days=10)) == []
    assert _cert(tmp_path / "user.pem").serial_number == first

    later = (
        NOW + dt.timedelta(days=certificates.LEAF_DAYS) - certificates.RENEW_WITHIN + dt.timedelta(hours=1)
    )
    renewed = certificates.ensure(tmp_path, ["user", "order"], now=later)

    assert set(renewed) == {"user", "order", "supervisor", "prometheus"}
    assert _cert(tmp_path / "user.pem").serial_number != first
    assert _cert(tmp_path / "user.pem").not_valid_after_utc > later + certificates.RENEW_WITHIN


def test_a_missing_or_foreign_certificate_is_issued_again(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["user", "order"], now=NOW)
    (tmp_path / "user.key").unlink()
    other = tmp_path / "other"
    certificates.ensure(other, ["order"], now=NOW)
    (tmp_path / "order.pem").write_bytes((other / "order.pem").read_bytes())  # another CA's

    assert certificates.ensure(tmp_path, ["user", "order"], now=NOW) == ["user", "order"]
    _cert(tmp_path / "order.pem").verify_directly_issued_by(_cert(tmp_path / "ca.pem"))


def test_a_ca_close_to_expiry_is_replaced_and_every_certificate_issued_again(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["user"], now=NOW)
    old_ca = _cert(tmp_path / "ca.pem")

    near_end = NOW + dt.timedelta(days=certificates.CA_DAYS) - dt.timedelta(days=1)
    renewed = certificates.ensure(tmp_path, ["user"], now=near_end)

    assert renewed == ["user", "supervisor", "prometheus"]
    new_ca = _cert(tmp_path / "ca.pem")
    assert new_ca.serial_number != old_ca.serial_number
    _cert(tmp_path / "user.pem").verify_directly_issued_by(new_ca)


def test_rotate_issues_a_new_key_and_certificate_under_the_same_ca(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["order", "user"], now=NOW)
    ca_before = (tmp_path / "ca.pem").read_bytes()
    key_before = (tmp_path / "order.key").read_bytes()
    user_before = (tmp_path / "user.pem").read_bytes()

    assert certificates.rotate(tmp_path, ["order"], now=NOW) == ["order"]

    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert (tmp_path / "order.key").read_bytes() != key_before
    assert (tmp_path / "user.pem").read_bytes() == user_before
    _cert(tmp_path / "order.pem").verify_directly_issued_by(_cert(tmp_path / "ca.pem"))
    assert certificates.issued_names(tmp_path) == ["order", "prometheus", "supervisor", "user"]


def test_certificates_load_into_tls_contexts_that_trust_only_our_ca(tmp_path: Path) -> None:
    certificates.ensure(tmp_path, ["order"])

    client = client_context(TlsFiles.of(tmp_path, "supervisor"))
    server = server_context(TlsFiles.of(tmp_path, "order"))

    assert client is not None and client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in client.get_ca_certs()] == [c["subject"] for c in server.get_ca_certs()]
    assert len(client.get_ca_certs()) == 1


def test_a_name_that_is_not_a_component_is_refused(tmp_path: Path) -> None:
    ca, _ = certificates.authority(tmp_path)
    with pytest.raises(certificates.CertificateError):
        certificates.issue(tmp_path, ca, "../etc/passwd")


@pytest.mark.parametrize(
    ("environ", "configured", "expected"),
    [
        ({}, None, False),  # development: off
        ({"MSASHOP_ENV": "test"}, None, False),
        ({"MSASHOP_ENV": "production"}, None, True),  # production: on
        ({"MSASHOP_ENV": "production"}, False, False),  # the config file says otherwise
        ({}, True, True),
        ({"MSASHOP_MTLS": "on"}, False, True),  # the environment variable wins
        ({"MSASHOP_MTLS": "off", "MSASHOP_ENV": "production"}, True, False),
    ],
)
def test_mtls_is_on_in_production_unless_the_config_or_msashop_mtls_says_otherwise(
    environ: dict[str, str], configured: bool | None, expected: bool
) -> None:
    assert certificates.mtls_enabled(configured, environ) is expected


def test_a_bad_msashop_mtls_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="MSASHOP_MTLS"):
        certificates.mtls_enabled(None, {"MSASHOP_MTLS": "maybe"})
