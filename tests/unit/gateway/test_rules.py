"""Which service, subset and faults a request gets from the compiled traffic rules."""

import random
import tomllib

from msashop.gateway.rules import Plan, RouteTable
from msashop.gateway.traffic import TrafficConfig

CANARY = """
[[services.product.http]]
match = [{ headers = { x-version = { exact = "v2" } } }]
route = [{ destination = { subset = "v2" } }]

[[services.product.http]]
route = [
  { destination = { subset = "v1" }, weight = 90 },
  { destination = { subset = "v2" }, weight = 10 },
]
"""


def _table(text: str) -> RouteTable:
    return RouteTable(TrafficConfig.model_validate(tomllib.loads(text)))


def _plan(table: RouteTable, path: str, method: str = "GET", seed: int = 1, **headers: str) -> Plan | None:
    return table.plan(method, path, {k.replace("_", "-"): v for k, v in headers.items()}, random.Random(seed))


def test_without_rules_the_prefix_table_decides_and_any_version_serves() -> None:
    table = _table("")
    assert _plan(table, "/api/products/p1") == Plan("product", "/products/p1", None)
    assert _plan(table, "/api/admin/dlq/order/d1") == Plan("order", "/admin/dlq/d1", None)
    assert _plan(table, "/api/nope") is None


def test_canary_splits_ninety_ten_within_three_points_over_2000_requests() -> None:
    table, rng = _table(CANARY), random.Random(42)
    picks = [table.plan("GET", "/api/products", {}, rng) for _ in range(2000)]
    v2_share = sum(p is not None and p.subset == "v2" for p in picks) / 2000
    assert abs(v2_share - 0.10) <= 0.03
    assert {p.subset for p in picks if p is not None} == {"v1", "v2"}


def test_x_version_v2_goes_to_v2_every_time_and_only_on_an_exact_match() -> None:
    table, rng = _table(CANARY), random.Random(3)
    pinned = [table.plan("GET", "/api/products", {"x-version": "v2"}, rng) for _ in range(500)]
    assert {p.subset for p in pinned if p is not None} == {"v2"}
    near_misses = [
        table.plan("GET", "/api/products", {"x-version": value}, rng) for value in ("V2", "v2 ", "v20") * 200
    ]
    assert abs(sum(p is not None and p.subset == "v2" for p in near_misses) / 600 - 0.10) <= 0.05


def test_another_services_rules_do_not_apply() -> None:
    table = _table(CANARY)
    assert _plan(table, "/api/orders", x_version="v2") == Plan("order", "/orders", None)


def test_a_fault_applies_to_its_route_and_method_only() -> None:
    table = _table(
        """
        [[services.order.http]]
        match = [{ uri = { prefix = "/api/orders" }, method = { exact = "POST" } }]
        fault.abort = { httpStatus = 503 }
        """
    )
    placed = _plan(table, "/api/orders", "POST")
    assert placed is not None and placed.faults[0].abort is not None
    assert placed.faults[0].abort.http_status == 503
    listed = _plan(table, "/api/orders", "GET")
    assert listed is not None and listed.faults == ()


def test_an_edge_rule_splits_a_path_across_services_and_rewrites_it() -> None:
    table = _table(
        """
        [[http]]
        match = [{ uri = { prefix = "/api/v1/users" } }]
        rewrite = { uri = "/users" }
        route = [
          { destination = { host = "legacy" }, weight = 90 },
          { destination = { host = "user" }, weight = 10 },
        ]
        """
    )
    rng = random.Random(5)
    plans = [table.plan("GET", "/api/v1/users/u1", {}, rng) for _ in range(2000)]
    assert {(p.service, p.path) for p in plans if p is not None} == {
        ("legacy", "/users/u1"),
        ("user", "/users/u1"),
    }
    assert abs(sum(p is not None and p.service == "user" for p in plans) / 2000 - 0.10) <= 0.03
    # Other paths still follow the prefix table.
    assert _plan(table, "/api/users/me") == Plan("user", "/users/me", None)


def test_an_edge_rule_without_rewrite_strips_api_and_the_services_own_rules_pick_the_subset() -> None:
    table = _table(
        """
        [[http]]
        match = [{ uri = { prefix = "/api/catalog" } }]
        route = [{ destination = { host = "product" } }]
        """
        + CANARY
    )
    assert _plan(table, "/api/catalog/p1", x_version="v2") == Plan("product", "/catalog/p1", "v2")


def test_dot_segments_are_refused_even_when_an_edge_rule_would_match() -> None:
    table = _table(
        """
        [[http]]
        match = [{ uri = { prefix = "/api/v1" } }]
        route = [{ destination = { host = "x" } }]
        """
    )
    for path in ("/api/v1/../admin", "/api/v1/%2E%2E/admin", "/api/v1/./x"):
        assert _plan(table, path) is None
    assert _plan(table, "/api/v1/.well-known") is not None
