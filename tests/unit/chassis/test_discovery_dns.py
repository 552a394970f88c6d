import pytest

from msashop.chassis.discovery import DnsDiscovery
from msashop.chassis.platform_discovery import PlatformDiscovery
from msashop.chassis.settings import ServiceSettings


def test_dns_discovery_names_one_instance_per_service() -> None:
    dns = DnsDiscovery("http://{service}.shop.svc.cluster.local:8000/")
    [instance] = dns.instances("product")
    assert (instance.url, instance.version) == ("http://product.shop.svc.cluster.local:8000", "v1")
    assert dns.url("user") == "http://user.shop.svc.cluster.local:8000"
    with pytest.raises(ValueError):
        DnsDiscovery("http://product:8000")


def test_platform_discovery_uses_dns_when_a_template_is_set(tmp_path: object) -> None:
    settings = ServiceSettings.load("order", dns_url_template="http://{service}:8000")
    assert PlatformDiscovery(settings).url("product") == "http://product:8000"
