"""The chassis side: ConsulRegistrar registers, ConsulDiscovery watches, against the registry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from msashop.chassis.discovery import Instance
from msashop.chassis.errors import UpstreamUnavailable
from msashop.chassis.registry import ConsulDiscovery, ConsulRegistrar
from tests.conftest import free_port, wait_until
from tests.integration.registry.conftest import RegistryServer, Target, call


def instance(target: Target, n: int = 1, tags: tuple[str, ...] = ("v1",)) -> Instance:
    return Instance(id=f"product-{n}", service="product", url=target.url, tags=frozenset(tags))


async def test_registered_instances_reach_discovery_with_their_tags(registry: RegistryServer) -> None:
    first, second = Target(), Target()
    await first.start()
    await second.start()
    registrar = ConsulRegistrar(registry.url)
    discovery = ConsulDiscovery(registry.url, services=["product"], wait="5s")
    await discovery.start()
    try:
        assert discovery.instances("product") == []
        with pytest.raises(UpstreamUnavailable):
            discovery.url("product")
        await registrar.register(instance(first, 1), health_url=first.health_url, interval="1s")
        await registrar.register(instance(second, 2, ("v2", "canary")), health_url=second.health_url)

        found = await discovery.wait_for("product", 2, within=5)
        assert {(i.id, i.url, i.version) for i in found} == {
            ("product-1", first.url, "v1"),
            ("product-2", second.url, "v2"),
        }
        assert next(i for i in found if i.id == "product-2").tags == frozenset({"v2", "canary"})
        assert discovery.url("product") in (first.url, second.url)
        assert discovery.all() == {"product": found[0].url}

        first.status = 500  # unhealthy: leaves the list at the next check (1 s)
        await wait_until(lambda: [i.id for i in discovery.instances("product")] == ["product-2"], within=5)
        first.status = 200
        await wait_until(lambda: len(discovery.instances("product")) == 2, within=5)

        assert await registrar.deregister("product-2") is True
        await wait_until(lambda: [i.id for i in discovery.instances("product")] == ["product-1"], within=3)
        assert await registrar.deregister("product-2") is False
    finally:
        await discovery.stop()
        await first.stop()
        await second.stop()


async def test_watch_wakes_at_once_rather_than_at_the_end_of_its_wait(
    registry: RegistryServer, target: Target
) -> None:
    discovery = ConsulDiscovery(registry.url, services=["product"], wait="30s")
    await discovery.start()
    try:
        await asyncio.sleep(0.2)  # the watch now blocks on the registry
        started = time.monotonic()
        await ConsulRegistrar(registry.url).register(instance(target), health_url=target.health_url)
        await discovery.wait_for("product", within=5)
        assert time.monotonic() - started < 2.0
    finally:
        await discovery.stop()


async def test_a_service_first_asked_for_is_watched_from_then_on(
    registry: RegistryServer, target: Target
) -> None:
    discovery = ConsulDiscovery(registry.url, wait="5s")
    await discovery.start()
    try:
        assert discovery.instances("product") == []  # starts the watch
        await ConsulRegistrar(registry.url).register(instance(target), health_url=target.health_url)
        await wait_until(lambda: len(discovery.instances("product")) == 1, within=5)
    finally:
        await discovery.stop()


async def test_discovery_keeps_the_last_known_instances_while_the_registry_is_down(
    registry: RegistryServer, target: Target
) -> None:
    discovery = ConsulDiscovery(registry.url, services=["product"], wait="2s", max_retry_seconds=0.5)
    await ConsulRegistrar(registry.url).register(instance(target), health_url=target.health_url)
    await discovery.start()
    try:
        await discovery.wait_for("product", within=5)
        await registry.stop()
        await asyncio.sleep(2.5)  # the watch has failed at least once by now
        assert [i.id for i in discovery.instances("product")] == ["product-1"]

        await registry.start()  # same port, same data dir
        second = Target()
        await second.start()
        try:
            await ConsulRegistrar(registry.url).register(instance(second, 2), health_url=second.health_url)
            await discovery.wait_for("product", 2, within=10)
        finally:
            await second.stop()
    finally:
        await discovery.stop()


async def test_register_waits_for_a_registry_that_is_still_starting(tmp_path: Path, target: Target) -> None:
    registry = RegistryServer(tmp_path / "data", free_port())
    registering = asyncio.create_task(
        ConsulRegistrar(registry.url, retry_for=10).register(instance(target), health_url=target.health_url)
    )
    await asyncio.sleep(0.5)
    assert not registering.done()
    await registry.start()
    try:
        await asyncio.wait_for(registering, 10)
        assert list(await call(registry.client().agent.services)) == ["product-1"]
    finally:
        await registry.stop()


async def test_register_gives_up_after_retry_for(tmp_path: Path, target: Target) -> None:
    registrar = ConsulRegistrar(f"http://127.0.0.1:{free_port()}", retry_for=0.5)
    with pytest.raises(Exception, match="Connection"):
        await registrar.register(instance(target), health_url=target.health_url)


async def test_keep_registered_waits_for_health_re_registers_and_deregisters_on_close(
    registry: RegistryServer,
) -> None:
    target = Target()
    target.port = free_port()  # not listening yet: the instance is still starting
    registrar = ConsulRegistrar(registry.url)
    client = registry.client()
    registrar.keep_registered(instance(target), health_url=target.health_url, interval="1s", every=0.2)
    try:
        await asyncio.sleep(0.5)
        assert await call(client.agent.services) == {}  # not before its health answers

        await target.start(target.port)
        await wait_until(lambda: "product-1" in registry.agent.registry.services, within=5)  # type: ignore[union-attr]
        _, entries = await call(client.health.service, "product", passing=True)
        assert [e["Service"]["ID"] for e in entries] == ["product-1"]  # passing at once

        await call(client.agent.service.deregister, "product-1")  # as the reaper would
        await wait_until(lambda: "product-1" in registry.agent.registry.services, within=5)  # type: ignore[union-attr]

        await registrar.close()
        assert await call(client.agent.services) == {}
    finally:
        await registrar.close(deregister=False)
        await target.stop()
