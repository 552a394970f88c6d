"""The OTLP exporter verifies the CA named for it, not REQUESTS_CA_BUNDLE (requests lets the
environment's bundle override a session's `verify`)."""

from __future__ import annotations

import pytest

from msashop.chassis.tracing import _otlp_session


def test_without_a_named_ca_the_exporter_makes_its_own_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_CERTIFICATE", raising=False)
    assert _otlp_session() is None


def test_a_named_ca_wins_over_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/data/tls/ca.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = _otlp_session()
    assert session is not None
    session.verify = "/data/tls/ca.pem"  # what the exporter's transport does with the named CA
    merged = session.merge_environment_settings("https://127.0.0.1:4318/v1/traces", {}, None, None, None)
    assert merged["verify"] == "/data/tls/ca.pem"
