"""The traffic file's model: Istio's field names, durations, defaults, and what it refuses."""

import re
import tomllib
from pathlib import Path

import pytest

from msashop.gateway.traffic import TrafficConfig

README = Path(__file__).resolve().parents[3] / "src" / "msashop" / "gateway" / "README.md"


def _parse(text: str) -> TrafficConfig:
    return TrafficConfig.model_validate(tomllib.loads(text))


def test_the_readme_example_is_a_valid_traffic_file() -> None:
    example = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert example is not None
    config = _parse(example[1])
    product = config.services["product"]
    assert product.http[0].match[0].headers["x-version"].exact == "v2"
    assert [(d.destination.subset, d.weight) for d in product.http[1].route] == [("v1", 90), ("v2", 10)]
    assert config.policy("product").connection_pool.tcp.max_connections == 50


def test_without_a_file_the_guides_destination_rule_applies() -> None:
    policy = TrafficConfig().policy("product")
    assert policy.connection_pool.tcp.max_connections == 100
    assert policy.connection_pool.http.http1_max_pending_requests == 10
    outliers = policy.outlier_detection
    assert (outliers.consecutive_5xx_errors, outliers.base_ejection_time, outliers.max_ejection_percent) == (
        5,
        30.0,
        50,
    )


@pytest.mark.parametrize(
    ("written", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("1.5s", 1.5), ("2m", 120.0)]
)
def test_durations_are_written_the_istio_way(written: str, seconds: float) -> None:
    config = _parse(f'[trafficPolicy.outlierDetection]\nbaseEjectionTime = "{written}"\n')
    assert config.policy("x").outlier_detection.base_ejection_time == seconds


def test_a_service_policy_overrides_only_what_it_sets() -> None:
    config = _parse(
        """
        [trafficPolicy.connectionPool.tcp]
        maxConnections = 40
        [trafficPolicy.outlierDetection]
        baseEjectionTime = "10s"
        [services.order.trafficPolicy.connectionPool.http]
        http1MaxPendingRequests = 3
        """
    )
    order = config.policy("order")
    assert order.connection_pool.tcp.max_connections == 40
    assert order.connection_pool.http.http1_max_pending_requests == 3
    assert order.outlier_detection.base_ejection_time == 10.0
    assert config.policy("product").connection_pool.http.http1_max_pending_requests == 10


def test_header_names_match_in_lower_case() -> None:
    config = _parse(
        """
        [[services.product.http]]
        match = [{ headers = { X-Version = { exact = "v2" } } }]
        route = [{ destination = { subset = "v2" } }]
        """
    )
    assert set(config.services["product"].http[0].match[0].headers) == {"x-version"}


@pytest.mark.parametrize(
    "text",
    [
        # several destinations without weights
        '[[services.product.http]]\nroute = [{ destination = { subset = "v1" } }, '
        '{ destination = { subset = "v2" } }]',
        # an unknown key (a typo must not mean "no rule")
        "[trafficPolicy.outlierDetection]\nconsecutiveErorrs = 5",
        # a string match with two kinds
        '[[services.product.http]]\nmatch = [{ uri = { prefix = "/a", exact = "/a" } }]',
        # an edge rule needs hosts
        '[[http]]\nroute = [{ destination = { subset = "v2" } }]',
        # a service rule cannot send traffic to another service
        '[[services.product.http]]\nroute = [{ destination = { host = "legacy" } }]',
        # an abort is an error status
        "[[services.product.http]]\nfault.abort = { httpStatus = 200 }",
        '[trafficPolicy.outlierDetection]\nbaseEjectionTime = "soon"',
    ],
)
def test_invalid_rules_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        _parse(text)
