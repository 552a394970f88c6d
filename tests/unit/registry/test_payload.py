"""Registration bodies in the shapes clients send: py-consul's lowercase keys, Consul's docs'."""

import pytest

from msashop.registry.payload import InvalidRequest, check_update, service_registration


def test_py_consul_body_with_an_http_check() -> None:
    body = {
        "name": "product",
        "id": "product-2",
        "address": "127.0.0.1",
        "port": 8102,
        "tags": ["v2", "development"],
        "checks": [
            {"http": "http://127.0.0.1:8102/health", "interval": "10s", "timeout": "5s",
             "DeregisterCriticalServiceAfter": "30s"}
        ],
    }  # fmt: skip
    spec, checks = service_registration(body)
    assert (spec.id, spec.name, spec.port, spec.tags) == ("product-2", "product", 8102, ("v2", "development"))
    [(check, status)] = checks
    assert check.id == "service:product-2"
    assert check.name == "Service 'product' check"
    assert (check.kind, check.interval, check.timeout, check.deregister_after) == ("http", 10.0, 5.0, 30.0)
    assert status is None


def test_documented_body_with_check_and_checks() -> None:
    body = {
        "Name": "order",
        "Check": {"TTL": "15s", "Status": "passing"},
        "Checks": [{"CheckID": "order-db", "HTTP": "http://h/ready", "Interval": "1m"}],
        "deregister_critical_service_after": "1m",
    }
    spec, checks = service_registration(body)
    assert spec.id == "order"  # ID defaults to the name
    # Consul numbers a service's checks when it has several; the single Check comes first.
    assert [(check.id, check.kind, status) for check, status in checks] == [
        ("service:order:1", "ttl", "passing"),
        ("order-db", "http", None),
    ]
    assert checks[0][0].ttl == 15.0


def test_http_check_interval_defaults_to_10s_and_never_below_the_minimum() -> None:
    _, [(default, _)] = service_registration({"Name": "a", "Check": {"HTTP": "http://h/health"}})
    _, [(fast, _)] = service_registration(
        {"Name": "a", "Check": {"HTTP": "http://h/health", "Interval": "10ms"}}, min_interval=1.0
    )
    assert (default.interval, default.timeout) == (10.0, 5.0)
    assert fast.interval == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Name": "a", "Port": "80"},
        {"Name": "a", "Check": {"TCP": "h:80", "Interval": "10s"}},
        {"Name": "a", "Check": {"Interval": "10s"}},
        {"Name": "a", "Check": {"HTTP": "http://h", "TTL": "5s"}},
        {"Name": "a", "Check": {"TTL": "soon"}},
        {"Name": "a", "Check": {"TTL": "5s", "Status": "fine"}},
        {"Name": "a", "Tags": "v1"},
        [],
    ],
)
def test_bodies_the_registry_refuses(body: object) -> None:
    with pytest.raises(InvalidRequest):
        service_registration(body)


def test_check_update_needs_a_status() -> None:
    assert check_update({"Status": "warning", "Output": "slow"}) == ("warning", "slow")
    with pytest.raises(InvalidRequest):
        check_update({"Output": "no status"})
