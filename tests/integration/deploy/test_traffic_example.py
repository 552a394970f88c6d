"""deploy/traffic.example.toml is a traffic file the gateway loads as it is, and the gateway's own
route table sends requests where the evaluator the Istio and nginx comparisons use says."""

from __future__ import annotations

import random
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.deploy.routing_models import REQUESTS, Request, gateway_shares

TRAFFIC = Path(__file__).resolve().parents[3] / "deploy" / "traffic.example.toml"
traffic_file = pytest.importorskip("msashop.gateway.traffic_file", reason="gateway without a traffic file")
rules = pytest.importorskip("msashop.gateway.rules", reason="gateway without traffic rules")


def test_the_gateway_loads_the_example() -> None:
    config = traffic_file.load_traffic(TRAFFIC)
    assert [rule.name for rule in config.http] == [
        "legacy-api",
        "catalog-reads-pinned-v2",
        "catalog-reads-migration",
    ]
    assert [rule.name for rule in config.services["product"].http] == ["pinned-v2", "canary"]
    policy = config.policy("product")
    assert policy.outlier_detection.base_ejection_time == 30
    assert policy.connection_pool.tcp.max_connections == 100


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.method} {r.path} {r.headers or ''}")
def test_the_gateways_route_table_agrees_with_the_comparison_model(request_: Request) -> None:
    table = rules.RouteTable(traffic_file.load_traffic(TRAFFIC))
    rng, draws = random.Random(7), 4000
    plans = [table.plan(request_.method, request_.path, request_.headers, rng) for _ in range(draws)]
    seen = Counter((p.service, p.subset or "") for p in plans)
    expected, paths = gateway_shares(tomllib.loads(TRAFFIC.read_text()), request_)
    assert seen.keys() == expected.keys()
    for key, share in expected.items():
        assert abs(seen[key] / draws - share) <= 0.02, (key, seen, expected)
    assert {p.path for p in plans} == paths
