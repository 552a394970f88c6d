"""The registry's state transitions, on a clock the test moves."""

import pytest

from msashop.registry.model import CheckSpec, ServiceSpec, http_status, worst
from msashop.registry.state import NotAllowed, Registry, UnknownId
from msashop.registry.store import restore, snapshot


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def http_check(service_id: str, deregister_after: float | None = None) -> CheckSpec:
    return CheckSpec(
        id=f"service:{service_id}",
        name="health",
        kind="http",
        service_id=service_id,
        http="http://127.0.0.1:1/health",
        interval=10.0,
        timeout=5.0,
        deregister_after=deregister_after,
    )


def ttl_check(service_id: str, ttl: float = 10.0) -> CheckSpec:
    return CheckSpec(id=f"service:{service_id}", name="ttl", kind="ttl", service_id=service_id, ttl=ttl)


def service(service_id: str, name: str = "product", tags: tuple[str, ...] = ("v1",)) -> ServiceSpec:
    return ServiceSpec(id=service_id, name=name, tags=tags, address="127.0.0.1", port=8100)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> Registry:
    return Registry(clock)


def passing_ids(registry: Registry, name: str = "product") -> list[str]:
    return [record.spec.id for record, _ in registry.instances(name, passing=True)]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, "passing"),
        (204, "passing"),
        (429, "warning"),
        (500, "critical"),
        (503, "critical"),
        (404, "critical"),
    ],
)
def test_http_answers_map_to_statuses_as_in_consul(code: int, status: str) -> None:
    assert http_status(code) == status


def test_an_instance_is_as_healthy_as_its_worst_check() -> None:
    assert worst([]) == "passing"
    assert worst(["passing", "warning"]) == "warning"
    assert worst(["warning", "critical", "passing"]) == "critical"


def test_a_new_check_starts_critical_and_the_instance_is_not_passing(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    assert registry.checks["service:product-1"].status == "critical"
    assert passing_ids(registry) == []
    assert [r.spec.id for r, _ in registry.instances("product")] == ["product-1"]


def test_check_results_move_the_instance_in_and_out_of_passing(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    registry.update_check("service:product-1", "passing", "200 OK")
    assert passing_ids(registry) == ["product-1"]
    registry.update_check("service:product-1", "warning", "429")
    assert passing_ids(registry) == []  # `?passing` wants every check passing
    assert registry.status_of("product-1") == "warning"


def test_only_status_changes_move_the_index_and_only_for_their_service(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    registry.register_service(service("user-1", "user"), [(http_check("user-1"), None)])
    product, user, total = registry.name_index("product"), registry.name_index("user"), registry.index

    registry.update_check("service:product-1", "critical", "still down, new output")
    assert (registry.index, registry.checks["service:product-1"].output) == (total, "still down, new output")

    registry.update_check("service:user-1", "passing")
    assert registry.name_index("user") > user
    assert registry.name_index("product") == product


def test_an_unknown_service_has_index_1_until_it_appears(registry: Registry) -> None:
    assert registry.name_index("nobody") == 1
    registry.register_service(service("nobody-1", "nobody"))
    assert registry.name_index("nobody") > 1


def test_re_registering_keeps_the_check_status_and_moves_nothing_when_unchanged(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    registry.update_check("service:product-1", "passing")
    index = registry.index
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    assert registry.index == index
    registry.register_service(service("product-1", tags=("v2",)), [(http_check("product-1"), None)])
    assert registry.index > index
    assert registry.checks["service:product-1"].status == "passing"
    assert registry.service_names() == {"product": ["v2"]}


def test_a_registration_may_set_the_initial_status(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), "passing")])
    assert passing_ids(registry) == ["product-1"]


def test_ttl_check_passes_then_expires(registry: Registry, clock: Clock) -> None:
    registry.register_service(service("product-1"), [(ttl_check("product-1", ttl=10.0), None)])
    registry.ttl_update("service:product-1", "passing", "alive")
    clock.now += 9.0
    registry.tick()
    assert registry.checks["service:product-1"].status == "passing"
    registry.ttl_update("service:product-1", "passing")  # each pass restarts the TTL
    clock.now += 9.5
    registry.tick()
    assert registry.checks["service:product-1"].status == "passing"
    clock.now += 1.0
    registry.tick()
    state = registry.checks["service:product-1"]
    assert (state.status, state.output) == ("critical", "TTL expired (no update for 10 s)")


def test_ttl_updates_only_apply_to_ttl_checks_that_exist(registry: Registry) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1"), None)])
    with pytest.raises(NotAllowed):
        registry.ttl_update("service:product-1", "passing")
    with pytest.raises(UnknownId):
        registry.ttl_update("service:nobody", "passing")


def test_critical_for_longer_than_deregister_after_is_deregistered(registry: Registry, clock: Clock) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1", deregister_after=30.0), None)])
    registry.register_service(service("product-2"), [(http_check("product-2", deregister_after=30.0), None)])
    registry.update_check("service:product-1", "passing")
    clock.now += 20.0
    registry.update_check("service:product-1", "critical")  # critical from now on
    clock.now += 10.5
    assert registry.tick() == ["product-2"]  # critical since registration, 30.5 s ago
    assert "product-1" in registry.services
    clock.now += 20.0
    assert registry.tick() == ["product-1"]
    assert registry.services == {} and registry.checks == {}
    assert registry.service_names() == {}


def test_recovering_resets_the_critical_clock(registry: Registry, clock: Clock) -> None:
    registry.register_service(service("product-1"), [(http_check("product-1", deregister_after=30.0), None)])
    clock.now += 25.0
    registry.update_check("service:product-1", "passing")
    clock.now += 1.0
    registry.update_check("service:product-1", "critical")
    clock.now += 25.0
    assert registry.tick() == []
    assert passing_ids(registry) == []


def test_deregister_unknown_is_an_error(registry: Registry) -> None:
    with pytest.raises(UnknownId):
        registry.deregister_service("nobody")


def test_tags_filter_instances(registry: Registry) -> None:
    registry.register_service(service("product-1", tags=("v1", "production")))
    registry.register_service(service("product-2", tags=("v2", "production")))
    assert [r.spec.id for r, _ in registry.instances("product", tags=["v2"])] == ["product-2"]
    assert registry.service_names() == {"product": ["production", "v1", "v2"]}


def test_snapshot_and_restore_keep_services_statuses_and_indexes(registry: Registry, clock: Clock) -> None:
    registry.register_service(service("product-1", tags=("v2",)), [(http_check("product-1", 30.0), None)])
    registry.register_service(service("user-1", "user"), [(ttl_check("user-1", ttl=5.0), None)])
    registry.update_check("service:product-1", "passing", "200 OK")
    registry.ttl_update("service:user-1", "passing")
    clock.now += 100.0  # the registry was down longer than the TTL
    again = Registry(clock)
    restore(again, snapshot(registry))
    assert snapshot(again) == snapshot(registry)
    assert again.index == registry.index and again.name_index("user") == registry.name_index("user")
    assert [r.spec.tags for r, _ in again.instances("product", passing=True)] == [("v2",)]
    again.tick()
    assert again.checks["service:user-1"].status == "passing"  # a full TTL from the restart
    clock.now += 6.0
    again.tick()
    assert again.checks["service:user-1"].status == "critical"
