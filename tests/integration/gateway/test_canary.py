"""Canary through the real gateway: header routing, weighted split, reload without restart."""

from prometheus_client import REGISTRY

from tests.integration.gateway.conftest import Gateway, Upstream

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


async def _canary(gateway: Gateway) -> None:
    gateway.rules(CANARY)
    await gateway.add(Upstream("v1-a"), Upstream("v1-b"), Upstream("v2-a", version="v2"))


async def test_x_version_v2_reaches_only_v2_instances(gateway: Gateway) -> None:
    await _canary(gateway)
    assert await gateway.spread("/api/products", 200, headers={"x-version": "v2"}) == {"v2-a": 200}


async def test_header_routing_is_an_exact_match(gateway: Gateway) -> None:
    await _canary(gateway)
    for value in ("V2", "v2.1", "v"):
        seen = await gateway.spread("/api/products", 100, headers={"x-version": value})
        assert seen["v1-a"] + seen["v1-b"] > 70, value


async def test_other_traffic_splits_ninety_ten_within_three_points_over_2000_requests(
    gateway: Gateway,
) -> None:
    await _canary(gateway)
    seen = await gateway.spread("/api/products", 2000)
    assert sum(seen.values()) == 2000
    assert abs(seen["v2-a"] / 2000 - 0.10) <= 0.03
    # Round robin inside the v1 subset.
    assert abs(seen["v1-a"] - seen["v1-b"]) <= 1
    v2_answers = REGISTRY.get_sample_value(
        "gateway_upstream_requests_total", {"service": "product", "subset": "v2", "status_code": "200"}
    )
    assert v2_answers is not None and v2_answers >= seen["v2-a"]


async def test_a_subset_without_instances_is_a_fast_json_503(gateway: Gateway) -> None:
    gateway.rules(CANARY)
    await gateway.add(Upstream("v1-a"))
    answer = await gateway.client.get("/api/products", headers={"x-version": "v2"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "upstream_unavailable"
    assert answer.json()["error"]["details"] == {"service": "product", "subset": "v2"}


async def test_new_weights_apply_without_a_restart(gateway: Gateway) -> None:
    await gateway.add(Upstream("v1-a"), Upstream("v2-a", version="v2"))
    assert set(await gateway.spread("/api/products", 20)) == {"v1-a", "v2-a"}  # no file: any version
    gateway.rules('[[services.product.http]]\nroute = [{ destination = { subset = "v2" } }]\n')
    assert await gateway.spread("/api/products", 20) == {"v2-a": 20}
    gateway.rules(
        '[[services.product.http]]\nroute = [{ destination = { subset = "v1" }, weight = 100 },'
        ' { destination = { subset = "v2" }, weight = 0 }]\n'
    )
    assert await gateway.spread("/api/products", 20) == {"v1-a": 20}


async def test_a_broken_file_keeps_the_rules_in_force(gateway: Gateway) -> None:
    await gateway.add(Upstream("v1-a"), Upstream("v2-a", version="v2"))
    gateway.rules('[[services.product.http]]\nroute = [{ destination = { subset = "v2" } }]\n')
    assert await gateway.spread("/api/products", 10) == {"v2-a": 10}
    gateway.rules("[[services.product.http]]\nroute = [{ destination = { subset = ")
    assert await gateway.spread("/api/products", 10) == {"v2-a": 10}
    gateway.traffic_file.unlink()  # no file: the defaults again
    assert set(await gateway.spread("/api/products", 10)) == {"v1-a", "v2-a"}


async def test_an_edge_rule_sends_a_share_of_a_path_to_another_service(gateway: Gateway) -> None:
    legacy, new = Upstream("legacy-1", service="legacy"), Upstream("user-1", service="user")
    await gateway.add(legacy, new)
    gateway.rules(
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
    seen = await gateway.spread("/api/v1/users/u1?x=1", 1000)
    assert abs(seen["user-1"] / 1000 - 0.10) <= 0.03
    assert seen["legacy-1"] + seen["user-1"] == 1000
    assert set(legacy.paths) == set(new.paths) == {"/users/u1"}
    # The prefix table still owns every other path.
    assert (await gateway.client.get("/api/users/me")).json()["instance"] == "user-1"
