"""deploy/istio/: well-formed Istio resources that say what the gateway's traffic file says
(deploy/traffic.example.toml): the same destinations in the same shares for the same requests,
the same canary, outlier detection, connection pool and fault example."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.deploy.routing_models import (
    REQUESTS,
    Request,
    gateway_shares,
    istio_shares,
    weighted,
)

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
TRAFFIC = DEPLOY / "traffic.example.toml"
KINDS = {"Gateway", "VirtualService", "DestinationRule"}


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "istio").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def traffic() -> dict[str, Any]:
    if not TRAFFIC.exists():
        pytest.skip("no deploy/traffic.example.toml to compare with")
    return tomllib.loads(TRAFFIC.read_text())


def seconds(duration: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert found, duration
    return float(found[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[found[2]]


def test_every_manifest_is_a_well_formed_istio_resource() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} == KINDS
    subsets = {
        d["spec"]["host"]: {s["name"]: s["labels"] for s in d["spec"].get("subsets", [])}
        for d in docs
        if d["kind"] == "DestinationRule"
    }
    for doc in docs:
        assert doc["apiVersion"] in ("networking.istio.io/v1beta1", "networking.istio.io/v1")
        assert doc["metadata"]["namespace"] == "msashop" and doc["metadata"]["name"]
        if doc["kind"] != "VirtualService":
            continue
        for rule in doc["spec"]["http"]:
            route = rule["route"]
            if len(route) > 1:  # Istio wants the weights of a split to add up to 100
                assert sum(d["weight"] for d in route) == 100, rule["name"]
            for destination in (d["destination"] for d in route):
                if "subset" in destination:  # a subset exists only where a DestinationRule names it
                    assert destination["subset"] in subsets[destination["host"]], rule["name"]
    assert subsets["product"] == {"v1": {"version": "v1"}, "v2": {"version": "v2"}}


def test_destination_rules_carry_the_traffic_policy() -> None:
    policy = traffic()["trafficPolicy"]
    outlier, pool = policy["outlierDetection"], policy["connectionPool"]
    assert (outlier["consecutive5xxErrors"], seconds(outlier["baseEjectionTime"])) == (5, 30)
    assert outlier["maxEjectionPercent"] == 50
    own: dict[str, Any] = traffic().get("services", {}).get("product", {}).get("trafficPolicy", {})
    cases: list[tuple[str, dict[str, Any]]] = [("msashop-defaults", {}), ("product", own)]
    for name, overrides in cases:
        spec = named("DestinationRule", name)["spec"]["trafficPolicy"]
        want_outlier = {**outlier, **overrides.get("outlierDetection", {})}
        got = spec["outlierDetection"]
        assert got["consecutive5xxErrors"] == want_outlier["consecutive5xxErrors"]
        assert seconds(got["baseEjectionTime"]) == seconds(want_outlier["baseEjectionTime"])
        assert got["maxEjectionPercent"] == want_outlier["maxEjectionPercent"]
        want_pool = {**pool, **overrides.get("connectionPool", {})}
        assert spec["connectionPool"] == want_pool


def test_product_canary_in_the_mesh_is_the_traffic_files() -> None:
    rules = named("VirtualService", "product")["spec"]["http"]
    own = traffic()["services"]["product"]["http"]
    assert [r["name"] for r in rules] == [r["name"] for r in own]
    for istio, gateway in zip(rules, own, strict=True):
        assert istio.get("match", []) == gateway.get("match", [])
        assert [(d["subset"], w) for d, w in weighted(istio["route"])] == [
            (d["subset"], w) for d, w in weighted(gateway["route"])
        ]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.method} {r.path} {r.headers or ''}")
def test_the_edge_sends_each_request_where_the_gateway_does(request_: Request) -> None:
    gateway, gateway_paths = gateway_shares(traffic(), request_)
    istio, istio_paths = istio_shares(named("VirtualService", "msashop-edge"), request_)
    assert gateway.keys() == istio.keys()
    assert all(math.isclose(gateway[k], istio[k]) for k in gateway), (gateway, istio)
    assert gateway_paths == istio_paths


def test_the_strangler_share_is_the_guides() -> None:
    shares, _ = gateway_shares(traffic(), Request("GET", "/api/products/p1"))
    assert math.isclose(shares[("legacy", "")], 0.9)
    assert math.isclose(shares[("product", "v1")] + shares[("product", "v2")], 0.1)


def test_the_fault_example_is_the_traffic_files_commented_rule() -> None:
    text = TRAFFIC.read_text() if TRAFFIC.exists() else ""
    marker = "never in production.\n"
    if marker not in text:
        pytest.skip("the traffic file has no fault example")
    uncommented = "\n".join(line.removeprefix("# ") for line in text.split(marker, 1)[1].splitlines())
    gateway = tomllib.loads(uncommented)["services"]["order"]["http"][0]
    istio = named("VirtualService", "order-faults")["spec"]["http"][0]
    assert istio["name"] == gateway["name"]
    (want,), (got,) = gateway["match"], istio["match"]
    # The mesh sees the service's own path: the public one without /api.
    assert got == {**want, "uri": {"prefix": want["uri"]["prefix"].removeprefix("/api")}}
    delay, abort = istio["fault"]["delay"], istio["fault"]["abort"]
    assert seconds(delay["fixedDelay"]) == seconds(gateway["fault"]["delay"]["fixedDelay"])
    assert delay["percentage"] == gateway["fault"]["delay"]["percentage"]
    assert abort == gateway["fault"]["abort"]
