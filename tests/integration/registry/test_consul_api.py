"""The registry through py-consul, the client the platform uses: what a Consul agent would answer."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import consul
import pytest
import requests

from tests.conftest import wait_until
from tests.integration.registry.conftest import RegistryServer, Target, call


def names(entries: list[dict]) -> list[str]:
    return [entry["Service"]["ID"] for entry in entries]


async def healthy(client: consul.Consul, service: str) -> list[str]:
    _, entries = await call(client.health.service, service, passing=True)
    return names(entries)


async def statuses(client: consul.Consul) -> dict[str, str]:
    checks = await call(client.agent.checks)
    return {check_id: check["Status"] for check_id, check in checks.items()}


async def wait_until_async(
    read: Callable[[], Awaitable[object]], expected: object, within: float = 5.0
) -> None:
    """Until `await read()` equals `expected`."""
    deadline = time.monotonic() + within
    while (seen := await read()) != expected:
        assert time.monotonic() < deadline, f"{seen!r} is still not {expected!r}"
        await asyncio.sleep(0.05)


async def test_register_with_tags_then_deregister(registry: RegistryServer, target: Target) -> None:
    client = registry.client()
    check = consul.Check.http(target.health_url, "1s", timeout="1s", deregister="30s")
    for n, tags in ((1, ["v1", "development"]), (2, ["v2", "development"])):
        done = await call(
            client.agent.service.register,
            "product",
            service_id=f"product-{n}",
            address="127.0.0.1",
            port=target.port,
            tags=tags,
            meta={"zone": "a"},
            check=check,
        )
        assert done is True

    services = await call(client.agent.services)
    assert services["product-2"]["Tags"] == ["v2", "development"]
    assert services["product-2"]["Meta"] == {"zone": "a"}
    assert (services["product-2"]["Address"], services["product-2"]["Port"]) == ("127.0.0.1", target.port)
    _, catalog = await call(client.catalog.services)
    assert catalog == {"product": ["development", "v1", "v2"]}
    _, only_v2 = await call(client.catalog.service, "product", tag="v2")
    assert [entry["ServiceID"] for entry in only_v2] == ["product-2"]

    await wait_until_async(lambda: healthy(client, "product"), ["product-1", "product-2"])
    _, entries = await call(client.health.service, "product", passing=True, tag="v1")
    [entry] = entries
    assert entry["Service"]["Tags"] == ["v1", "development"]
    assert entry["Checks"][0]["CheckID"] == "service:product-1"
    assert entry["Checks"][0]["Definition"]["DeregisterCriticalServiceAfter"] == "30s"

    assert await call(client.agent.service.deregister, "product-1") is True
    assert await call(client.agent.service.deregister, "product-1") is False  # 404: unknown
    assert await healthy(client, "product") == ["product-2"]
    assert "service:product-1" not in await statuses(client)


async def test_http_check_follows_the_instance(registry: RegistryServer, target: Target) -> None:
    client = registry.client()
    await call(
        client.agent.service.register,
        "product",
        service_id="product-1",
        address="127.0.0.1",
        port=target.port,
        check=consul.Check.http(target.health_url, "1s", timeout="1s"),
    )
    await wait_until_async(lambda: healthy(client, "product"), ["product-1"])
    assert target.calls >= 1

    target.status = 500
    await wait_until_async(lambda: statuses(client), {"service:product-1": "critical"})
    assert await healthy(client, "product") == []
    checks = await call(client.agent.checks)
    assert checks["service:product-1"]["Output"].startswith(f"HTTP GET {target.health_url}: 500")

    target.status = 429  # overloaded: warning, still listed, not among the passing
    await wait_until_async(lambda: statuses(client), {"service:product-1": "warning"})
    _, everyone = await call(client.health.service, "product")
    assert names(everyone) == ["product-1"]
    assert await healthy(client, "product") == []

    target.status = 200
    await wait_until_async(lambda: healthy(client, "product"), ["product-1"])

    await target.stop()  # the process is gone: connection refused
    await wait_until_async(lambda: statuses(client), {"service:product-1": "critical"})


async def test_http_check_timeout_is_critical(registry: RegistryServer, target: Target) -> None:
    client = registry.client()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/health"
        await call(
            client.agent.service.register,
            "slow",
            service_id="slow-1",
            check={**consul.Check.http(url, "1s", timeout="300ms"), "Status": "passing"},
        )
        assert await healthy(client, "slow") == ["slow-1"]
        await wait_until_async(lambda: statuses(client), {"service:slow-1": "critical"})
        checks = await call(client.agent.checks)
        assert "timed out" in checks["service:slow-1"]["Output"]
    finally:
        silent.close()


async def test_ttl_check_pass_warn_fail_and_expiry(registry: RegistryServer) -> None:
    client = registry.client()
    await call(client.agent.service.register, "worker", service_id="worker-1", check=consul.Check.ttl("1s"))
    assert await statuses(client) == {"service:worker-1": "critical"}

    assert await call(client.agent.check.ttl_pass, "service:worker-1", notes="alive") is True
    assert await healthy(client, "worker") == ["worker-1"]
    checks = await call(client.agent.checks)
    assert checks["service:worker-1"]["Output"] == "alive"

    assert await call(client.agent.check.ttl_warn, "service:worker-1") is True
    assert await statuses(client) == {"service:worker-1": "warning"}
    assert await call(client.agent.check.ttl_fail, "service:worker-1") is True
    assert await statuses(client) == {"service:worker-1": "critical"}

    update = await call(
        requests.put,
        f"{registry.url}/v1/agent/check/update/service:worker-1",
        json={"Status": "passing", "Output": "caught up"},
        timeout=5,
    )
    assert update.status_code == 200
    assert await healthy(client, "worker") == ["worker-1"]

    await asyncio.sleep(1.6)  # no pass within the TTL
    checks = await call(client.agent.checks)
    assert checks["service:worker-1"]["Status"] == "critical"
    assert "TTL expired" in checks["service:worker-1"]["Output"]

    assert await call(client.agent.check.ttl_pass, "service:nobody") is False  # 404


async def test_critical_instance_is_deregistered_after_the_limit(
    registry: RegistryServer, target: Target
) -> None:
    client = registry.client()
    check = consul.Check.http(target.health_url, "1s", timeout="1s", deregister="1s")
    await call(client.agent.service.register, "product", service_id="product-1", check=check)
    await call(client.agent.service.register, "product", service_id="product-2", check=consul.Check.ttl("1m"))
    expected = {"service:product-1": "passing", "service:product-2": "critical"}
    await wait_until_async(lambda: statuses(client), expected)

    target.status = 503
    started = time.monotonic()
    await wait_until(lambda: "product-1" not in registry.agent.registry.services, within=6)  # type: ignore[union-attr]
    # Critical within one interval, gone one second later.
    assert 1.0 <= time.monotonic() - started < 4.0
    services = await call(client.agent.services)
    assert list(services) == ["product-2"]  # no DeregisterCriticalServiceAfter: kept


async def test_blocking_query_returns_on_change(registry: RegistryServer) -> None:
    client = registry.client()
    await call(client.agent.service.register, "product", service_id="product-1", check=consul.Check.ttl("1m"))
    index, _ = await call(client.health.service, "product", passing=True)

    started = time.monotonic()
    query = call(client.health.service, "product", passing=True, index=index, wait="10s")
    waiting = asyncio.create_task(query)
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await call(client.agent.service.register, "user", service_id="user-1")  # another service: no wake
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await call(client.agent.check.ttl_pass, "service:product-1")
    new_index, entries = await asyncio.wait_for(waiting, 5)
    assert 0.5 < time.monotonic() - started < 3.0
    assert int(new_index) > int(index)
    assert names(entries) == ["product-1"]


async def test_blocking_query_times_out_without_change(registry: RegistryServer) -> None:
    client = registry.client()
    await call(client.agent.service.register, "product", service_id="product-1")
    index, _ = await call(client.health.service, "product")
    started = time.monotonic()
    same, entries = await call(client.health.service, "product", index=index, wait="1s")
    elapsed = time.monotonic() - started
    assert same == index
    assert names(entries) == ["product-1"]
    assert 1.0 <= elapsed < 1.0 + 1.0 / 16 + 0.5  # wait plus Consul's jitter (at most wait/16)


async def test_catalog_services_block_until_the_set_changes(registry: RegistryServer) -> None:
    client = registry.client()
    index, services = await call(client.catalog.services)
    assert services == {}
    waiting = asyncio.create_task(call(client.catalog.services, index=index, wait="10s"))
    await asyncio.sleep(0.2)
    await call(client.agent.service.register, "order", service_id="order-1", tags=["v1"])
    new_index, services = await asyncio.wait_for(waiting, 5)
    assert int(new_index) > int(index)
    assert services == {"order": ["v1"]}


async def test_state_survives_a_restart(registry: RegistryServer, target: Target) -> None:
    client = registry.client()
    check = consul.Check.http(target.health_url, "1s", timeout="1s", deregister="30s")
    await call(client.agent.service.register, "product", service_id="product-1", tags=["v2"], check=check)
    await call(client.agent.service.register, "worker", service_id="worker-1", check=consul.Check.ttl("30s"))
    await call(client.agent.check.ttl_pass, "service:worker-1")
    await wait_until_async(lambda: healthy(client, "product"), ["product-1"])
    index, _ = await call(client.health.service, "product")
    assert (registry.data_dir / "registry" / "state.json").exists()

    await registry.restart()

    client = registry.client()
    services = await call(client.agent.services)
    assert sorted(services) == ["product-1", "worker-1"]
    assert services["product-1"]["Tags"] == ["v2"]
    assert await healthy(client, "product") == ["product-1"]  # no gap: last status kept
    assert await healthy(client, "worker") == ["worker-1"]
    again, _ = await call(client.health.service, "product")
    assert int(again) >= int(index)  # indexes never go backwards
    calls = target.calls
    await wait_until(lambda: target.calls > calls, within=3)  # its HTTP check runs again


async def test_bad_requests_are_refused_as_consul_does(registry: RegistryServer) -> None:
    client = registry.client()
    with pytest.raises(consul.ConsulException, match="400"):
        await call(client.agent.service.register, "x", check=consul.Check.tcp("127.0.0.1", 1, "10s"))
    response = await call(requests.put, f"{registry.url}/v1/agent/service/register", data="{no", timeout=5)
    assert (response.status_code, response.text[:21]) == (400, "Request decode failed")
    with pytest.raises(consul.ConsulException, match="500"):
        await call(client.health.service, "x", dc="elsewhere")
    assert await call(client.status.leader) == f"127.0.0.1:{registry.port}"
