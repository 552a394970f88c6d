"""Instance choice: the subset's version, minus ejected instances, round robin."""

import random
from pathlib import Path

import pytest

from msashop.chassis.discovery import Instance
from msashop.chassis.errors import UpstreamUnavailable
from msashop.gateway.mesh import Mesh
from msashop.gateway.traffic_file import TrafficFile


class FakeDiscovery:
    def __init__(self, *instances: Instance) -> None:
        self.found = list(instances)

    def instances(self, service: str) -> list[Instance]:
        return [i for i in self.found if i.service == service]

    def url(self, service: str) -> str:
        return self.instances(service)[0].url


def _instance(n: int, version: str) -> Instance:
    return Instance(f"product-{n}", "product", f"http://p{n}", frozenset({version}))


V1A, V1B, V1C, V2 = _instance(1, "v1"), _instance(2, "v1"), _instance(3, "v1"), _instance(4, "v2")


@pytest.fixture
def mesh() -> Mesh:
    # No file: the default policy (5 errors, 30 s, at most half ejected).
    return Mesh(TrafficFile(None), rng=random.Random(1))


def test_round_robin_within_the_subset(mesh: Mesh) -> None:
    discovery = FakeDiscovery(V1A, V2, V1B, V1C)
    picks = [mesh.pick(discovery, "product", "v1").id for _ in range(6)]
    assert picks == ["product-1", "product-2", "product-3"] * 2
    assert {mesh.pick(discovery, "product", "v2").id for _ in range(3)} == {"product-4"}


def test_no_subset_means_every_version(mesh: Mesh) -> None:
    discovery = FakeDiscovery(V1A, V2)
    assert {mesh.pick(discovery, "product", None).id for _ in range(4)} == {"product-1", "product-4"}


def test_a_subset_without_instances_is_unavailable_naming_it(mesh: Mesh) -> None:
    with pytest.raises(UpstreamUnavailable) as missing:
        mesh.pick(FakeDiscovery(V1A), "product", "v2")
    assert missing.value.details == {"service": "product", "subset": "v2"}
    with pytest.raises(UpstreamUnavailable) as none:
        mesh.pick(FakeDiscovery(), "product", None)
    assert none.value.details == {"service": "product"}


def test_an_ejected_instance_gets_no_traffic(mesh: Mesh) -> None:
    discovery = FakeDiscovery(V1A, V1B, V1C, V2)
    mesh.pick(discovery, "product", None)
    for _ in range(5):
        mesh.report("product", V1B, failed=True)
    assert "product-2" not in {mesh.pick(discovery, "product", "v1").id for _ in range(10)}


def test_when_the_whole_subset_is_ejected_it_is_used_anyway(mesh: Mesh) -> None:
    discovery = FakeDiscovery(V1A, V1B, V1C, V2)
    mesh.pick(discovery, "product", None)
    for _ in range(5):
        mesh.report("product", V2, failed=True)
    assert mesh.upstream("product").outliers.is_ejected("product-4")
    assert mesh.pick(discovery, "product", "v2") == V2


def test_excluded_instances_are_skipped(mesh: Mesh) -> None:
    discovery = FakeDiscovery(V1A, V1B)
    assert {mesh.pick(discovery, "product", None, ("product-1",)).id for _ in range(3)} == {"product-2"}


def test_reloaded_limits_apply_to_a_service_already_in_use(tmp_path: Path) -> None:
    path = tmp_path / "traffic.toml"
    mesh = Mesh(TrafficFile(path, check_every=0), rng=random.Random(1))
    assert mesh.upstream("product").limiter.max_connections == 100
    path.write_text("[services.product.trafficPolicy.connectionPool.tcp]\nmaxConnections = 7\n")
    mesh.plan("GET", "/api/products", {})
    assert mesh.upstream("product").limiter.max_connections == 7
