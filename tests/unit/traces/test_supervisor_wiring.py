"""`[tracing]` in the platform config, and what the supervisor tells each child about traces."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from msashop.supervisor.config import ConfigError, PlatformConfig, parse_config
from msashop.supervisor.launch import START_ORDER, Wiring, child_env, waves
from msashop.supervisor.platform import Platform, UpOptions


def test_tracing_is_read_from_the_config() -> None:
    config = parse_config(
        {"tracing": {"otlp_endpoint": "http://jaeger:4318/v1/traces", "sample_ratio": 0.25}}
    )
    assert (config.otlp_endpoint, config.trace_sample_ratio) == ("http://jaeger:4318/v1/traces", 0.25)
    assert parse_config({"tracing": {"sample_ratio": 1}}).trace_sample_ratio == 1.0


def test_without_tracing_the_embedded_store_is_meant() -> None:
    config = parse_config({})
    assert (config.otlp_endpoint, config.trace_sample_ratio) == ("", None)


@pytest.mark.parametrize(
    "tracing",
    [
        {"otlp_endpoint": "grpc://collector:4317"},
        {"otlp_endpoint": 4318},
        {"sample_ratio": 1.5},
        {"sample_ratio": -0.1},
        {"sample_ratio": "half"},
        {"sample_ratio": True},
        {"endpoint": "http://x"},
    ],
)
def test_a_wrong_tracing_section_is_refused(tracing: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"\[tracing\]"):
        parse_config({"tracing": tracing})


WIRING = Wiring(
    data_dir=Path("/data"),
    ports_file=Path("/data/ports.json"),
    bus_url="nats://x",
    store_url="redis://y",
    env="test",
    otlp_endpoint="http://127.0.0.1:4999/v1/traces",
    embedded_traces=True,
)


def test_every_child_but_the_store_sends_its_spans_to_the_store() -> None:
    order = child_env("order", 1, WIRING, PlatformConfig(), {})
    assert order["MSASHOP_ORDER_OTLP_ENDPOINT"] == "http://127.0.0.1:4999/v1/traces"
    gateway = child_env("gateway", 1, WIRING, PlatformConfig(), {})
    assert gateway["MSASHOP_GATEWAY_OTLP_ENDPOINT"] == "http://127.0.0.1:4999/v1/traces"
    store = child_env("traces", 1, WIRING, PlatformConfig(database_url="sqlite+aiosqlite:///{service}"), {})
    assert not {k for k in store if "OTLP" in k or "SAMPLE" in k or "DATABASE" in k}
    assert not any(k.startswith("OTEL_") for k in order)  # plain HTTP: no certificates to name


def test_the_sample_ratio_comes_from_the_config_unless_the_environment_says_it() -> None:
    config = PlatformConfig(trace_sample_ratio=0.25)
    assert child_env("user", 1, WIRING, config, {})["MSASHOP_USER_TRACE_SAMPLE_RATIO"] == "0.25"
    told = child_env("user", 1, WIRING, config, {"MSASHOP_TRACE_SAMPLE_RATIO": "1"})
    assert "MSASHOP_USER_TRACE_SAMPLE_RATIO" not in told  # inherited MSASHOP_TRACE_SAMPLE_RATIO wins
    assert "MSASHOP_USER_TRACE_SAMPLE_RATIO" not in child_env("user", 1, WIRING, PlatformConfig(), {})


def test_with_mtls_the_exporter_is_given_the_childs_certificate_for_the_embedded_store() -> None:
    wiring = replace(WIRING, tls_dir=Path("/data/tls"), otlp_endpoint="https://127.0.0.1:4999/v1/traces")
    env = child_env("payment", 1, wiring, PlatformConfig(), {})
    assert env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] == "/data/tls/ca.pem"
    assert env["OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"] == "/data/tls/payment.pem"
    assert env["OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"] == "/data/tls/payment.key"
    external = replace(wiring, otlp_endpoint="https://tempo:4318/v1/traces", embedded_traces=False)
    assert not any(k.startswith("OTEL_") for k in child_env("payment", 1, external, PlatformConfig(), {}))


def components(config: PlatformConfig, monkeypatch: pytest.MonkeyPatch, **environ: str) -> tuple[str, ...]:
    for name in ("MSASHOP_OTLP_ENDPOINT", "MSASHOP_TRACING", "MSASHOP_MTLS", "MSASHOP_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return Platform(UpOptions(data_dir=Path("/tmp/unused"), port=8000, config=config)).components


def test_the_store_starts_with_the_registry_unless_spans_go_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert components(PlatformConfig(), monkeypatch)[:2] == ("traces", "registry")
    assert waves(START_ORDER)[0] == ("traces", "registry")
    external = PlatformConfig(otlp_endpoint="http://jaeger:4318/v1/traces")
    assert "traces" not in components(external, monkeypatch)
    named = components(PlatformConfig(), monkeypatch, MSASHOP_OTLP_ENDPOINT="http://collector:4318")
    assert "traces" not in named
    assert "traces" not in components(PlatformConfig(), monkeypatch, MSASHOP_TRACING="false")


def test_the_registry_is_not_traced_unless_asked() -> None:
    assert child_env("registry", 1, WIRING, PlatformConfig(), {})["MSASHOP_REGISTRY_TRACING"] == "false"
    asked = child_env("registry", 1, WIRING, PlatformConfig(), {"MSASHOP_REGISTRY_TRACING": "true"})
    assert asked.get("MSASHOP_REGISTRY_TRACING") != "false"
    assert "MSASHOP_ORDER_TRACING" not in child_env("order", 1, WIRING, PlatformConfig(), {})
