"""How the chassis' ConsulDiscovery reads one `/v1/health/service/<name>` element."""

from msashop.chassis.registry import instance_from_entry


def entry(address: str, tags: list[str] | None) -> dict:
    return {
        "Node": {"Node": "msashop", "Address": "10.0.0.9"},
        "Service": {"ID": "product-2", "Service": "product", "Address": address, "Port": 8102, "Tags": tags},
        "Checks": [],
    }


def test_service_address_port_and_tags() -> None:
    found = instance_from_entry(entry("127.0.0.1", ["v2", "production"]))
    assert (found.id, found.service, found.url) == ("product-2", "product", "http://127.0.0.1:8102")
    assert found.tags == frozenset({"v2", "production"})
    assert found.version == "v2"


def test_no_service_address_means_the_node_address_and_no_tags_means_v1() -> None:
    found = instance_from_entry(entry("", None))
    assert found.url == "http://10.0.0.9:8102"
    assert (found.tags, found.version) == (frozenset(), "v1")


def test_ipv6_addresses_are_bracketed() -> None:
    assert instance_from_entry(entry("::1", [])).url == "http://[::1]:8102"
