"""`[tracing]` in the platform config, and what the supervisor tells each child about traces."""

from __future__ import annotations

import pytest

from msashop.supervisor.config import ConfigError, parse_config


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
