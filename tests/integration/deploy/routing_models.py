"""Where a request goes, read from each shipped routing file, as {(host, subset): share}.

Two small evaluators, one per format, so the deploy tests can check that the gateway's traffic
file (deploy/traffic.example.toml) and the Istio manifests (deploy/istio/) send the same
requests to the same places in the same shares. They implement only what those files use:
StringMatch exact/prefix/regex on uri, method and headers, weights, rewrite of a matched prefix.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from msashop.gateway.routes import resolve

Shares = dict[tuple[str, str], float]  # (host, subset or "") -> share of requests


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


# Requests the comparisons route: every kind of path, method and canary header the files tell apart.
REQUESTS = [
    Request("GET", "/api/products"),
    Request("GET", "/api/products/p1"),
    Request("HEAD", "/api/products/p1"),
    Request("GET", "/api/products/p1", {"x-version": "v2"}),
    Request("POST", "/api/products"),
    Request("PUT", "/api/products/p1", {"x-version": "v2"}),
    Request("DELETE", "/api/products/p1"),
    Request("GET", "/api/legacy/products"),
    Request("POST", "/api/legacy/orders"),
    Request("GET", "/api/orders/o1"),
    Request("POST", "/api/auth/login"),
    Request("GET", "/api/users/me"),
    Request("GET", "/api/inventory/p1"),
    Request("GET", "/api/payments"),
    Request("GET", "/api/notifications"),
    Request("GET", "/.well-known/jwks.json"),
]


def string_match(rule: dict[str, str], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in rule:
        return value == rule["exact"]
    if "prefix" in rule:
        return value.startswith(rule["prefix"])
    return re.fullmatch(rule["regex"], value) is not None


def request_match(match: dict[str, Any], request: Request) -> bool:
    if "uri" in match and not string_match(match["uri"], request.path):
        return False
    if "method" in match and not string_match(match["method"], request.method):
        return False
    return all(
        string_match(m, request.headers.get(name.lower())) for name, m in match.get("headers", {}).items()
    )


def first_rule(rules: list[dict[str, Any]], request: Request) -> dict[str, Any] | None:
    for rule in rules:
        matches = rule.get("match") or [{}]
        if any(request_match(m, request) for m in matches):
            return rule
    return None


def weighted(route: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
    if len(route) == 1:
        return [(route[0].get("destination", {}), 1.0)]
    total = sum(d["weight"] for d in route)
    return [(d.get("destination", {}), d["weight"] / total) for d in route]


def _add(shares: dict[tuple[str, str], float], host: str, subset: str, share: float) -> None:
    shares[(host, subset)] += share


def gateway_shares(config: dict[str, Any], request: Request) -> tuple[Shares, set[str]]:
    """The gateway with this traffic file: shares per (service, subset), and upstream paths."""
    shares: dict[tuple[str, str], float] = defaultdict(float)
    edge = first_rule(config.get("http", []), request)
    if edge is not None:
        stripped = request.path.removeprefix("/api")
        targets = [(d["host"], d.get("subset", ""), w, stripped) for d, w in weighted(edge["route"])]
    else:
        target = resolve(request.path)
        assert target is not None, request
        targets = [(target.service, "", 1.0, target.path)]
    paths = set()
    for host, subset, share, path in targets:
        paths.add(path)
        own = config.get("services", {}).get(host, {}).get("http", [])
        rule = None if subset else first_rule(own, request)
        if rule is None or not rule.get("route"):
            _add(shares, host, subset, share)
            continue
        for destination, inner in weighted(rule["route"]):
            _add(shares, host, destination.get("subset", ""), share * inner)
    return dict(shares), paths


def istio_shares(edge: dict[str, Any], request: Request) -> tuple[Shares, set[str]]:
    """The ingress gateway with this VirtualService: shares per (host, subset), upstream paths."""
    shares: dict[tuple[str, str], float] = defaultdict(float)
    rule = first_rule(edge["spec"]["http"], request)
    assert rule is not None, request
    path = request.path
    if "rewrite" in rule:
        prefix = next(m["uri"]["prefix"] for m in rule["match"] if request_match(m, request))
        path = rule["rewrite"]["uri"] + request.path[len(prefix) :]
    for destination, share in weighted(rule["route"]):
        _add(shares, destination["host"], destination.get("subset", ""), share)
    return dict(shares), {path}


def without_subsets(shares: Shares) -> dict[str, float]:
    by_host: dict[str, float] = defaultdict(float)
    for (host, _), share in shares.items():
        by_host[host] += share
    return dict(by_host)
