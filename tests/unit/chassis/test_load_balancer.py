"""Round robin over the listed instances, passive ejection and return, on a fake clock."""

from __future__ import annotations

from collections import Counter

import pytest

from msashop.chassis.errors import UpstreamUnavailable
from msashop.chassis.load_balancer import LoadBalancer
from tests.unit.chassis.fakes_resilience import FakeClock, FakeDiscovery


def balancer(clock: FakeClock, discovery: FakeDiscovery) -> LoadBalancer:
    return LoadBalancer(discovery, base_seconds=10, max_seconds=40, clock=clock)


def picks(lb: LoadBalancer, n: int) -> list[str]:
    return [lb.pick("product").id for _ in range(n)]


def test_round_robin_takes_each_instance_in_turn() -> None:
    lb = balancer(FakeClock(), FakeDiscovery(product=["a", "b", "c"]))
    assert picks(lb, 6) == ["a", "b", "c", "a", "b", "c"]


def test_an_instance_discovery_adds_or_drops_joins_or_leaves_the_rotation() -> None:
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(FakeClock(), discovery)
    discovery.listed["product"] = FakeDiscovery(product=["a", "b", "c"]).listed["product"]
    assert set(picks(lb, 3)) == {"a", "b", "c"}
    discovery.drop("product", "b")
    assert set(picks(lb, 4)) == {"a", "c"}


def test_a_failed_instance_is_skipped_at_once_and_comes_back_after_the_cool_off() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b", "c"])
    lb = balancer(clock, discovery)
    lb.failed(discovery.instances("product")[1])
    assert "b" not in picks(lb, 10)
    assert lb.ejected("product") == ["b"]
    clock.advance(10)
    assert "b" in picks(lb, 3)
    assert lb.ejected("product") == []


def test_an_ejected_instance_discovery_no_longer_lists_does_not_come_back() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(clock, discovery)
    lb.failed(discovery.instances("product")[1])
    discovery.drop("product", "b")
    clock.advance(60)
    assert set(picks(lb, 4)) == {"a"}


def test_the_cool_off_doubles_on_repeat_up_to_the_cap_and_a_success_forgets_it() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(clock, discovery)
    b = discovery.instances("product")[1]
    for expected in (10, 20, 40, 40):
        lb.failed(b)
        clock.advance(expected - 0.1)
        assert lb.ejected("product") == ["b"]
        clock.advance(0.1)
        assert lb.ejected("product") == []
    lb.succeeded(b)
    lb.failed(b)
    clock.advance(10)
    assert lb.ejected("product") == []


def test_failures_of_calls_under_way_when_it_was_ejected_eject_it_once() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(clock, discovery)
    b = discovery.instances("product")[1]
    for _ in range(5):
        lb.failed(b)
    clock.advance(10)
    assert lb.ejected("product") == []


def test_the_last_instance_is_never_ejected() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(clock, discovery)
    a, b = discovery.instances("product")
    lb.failed(a)
    lb.failed(b)  # the only one left: stays
    assert lb.ejected("product") == ["a"]
    assert set(picks(lb, 4)) == {"b"}

    alone = balancer(clock, FakeDiscovery(product=["solo"]))
    alone.failed(FakeDiscovery(product=["solo"]).instances("product")[0])
    assert picks(alone, 2) == ["solo", "solo"]


def test_when_every_instance_listed_is_ejected_all_are_used() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b"])
    lb = balancer(clock, discovery)
    lb.failed(discovery.instances("product")[0])
    discovery.drop("product", "b")  # only the ejected one is left
    assert picks(lb, 2) == ["a", "a"]


def test_a_retry_prefers_an_instance_the_call_has_not_tried() -> None:
    lb = balancer(FakeClock(), FakeDiscovery(product=["a", "b", "c"]))
    assert lb.pick("product").id == "a"
    assert lb.pick("product", avoid={"b"}).id == "c"
    assert lb.pick("product", avoid={"a", "b", "c"}).id in {"a", "b", "c"}


def test_skipping_an_ejected_instance_keeps_the_others_busy_evenly_enough() -> None:
    clock = FakeClock()
    discovery = FakeDiscovery(product=["a", "b", "c"])
    lb = balancer(clock, discovery)
    lb.failed(discovery.instances("product")[0])
    served = Counter(picks(lb, 300))
    assert set(served) == {"b", "c"} and min(served.values()) >= 100


def test_a_service_discovery_does_not_know_is_unavailable() -> None:
    lb = balancer(FakeClock(), FakeDiscovery())
    with pytest.raises(UpstreamUnavailable):
        lb.pick("product")
