"""Discovery and registration through Consul's HTTP API: our registry, or a real Consul agent.

Both sides use py-consul, a maintained Consul client, so this code does not depend on our
registry being the one that answers. py-consul is synchronous: its calls run in daemon threads
(`msashop.chassis.consul_calls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import consul
import structlog

from msashop.chassis.consul_calls import consul_client, in_thread
from msashop.chassis.discovery import Instance, first_url
from msashop.chassis.tls import TlsFiles, client_context

log = structlog.get_logger()

DEFAULT_URL = "http://127.0.0.1:8500"


def instance_from_entry(entry: dict[str, Any]) -> Instance:
    """One element of `/v1/health/service/<name>` as an Instance (the node's address when the
    service registered none, as Consul's DNS does; https when it registered `Meta.scheme`)."""
    service: dict[str, Any] = entry["Service"]
    address = str(service.get("Address") or entry["Node"]["Address"])
    host = f"[{address}]" if ":" in address else address
    scheme = (service.get("Meta") or {}).get("scheme") or "http"
    return Instance(
        id=str(service["ID"]),
        service=str(service["Service"]),
        url=f"{scheme}://{host}:{service['Port']}",
        tags=frozenset(service.get("Tags") or ()),
    )


class ConsulDiscovery:
    """The Discovery port over Consul's health API: a watch (blocking queries) per service.

    Reads come from the watches' cache, so they never wait on the network. A service asked for
    that is not watched yet starts its watch and reads as empty until the first answer: list
    the services you call in `services` so `start()` has them. When the registry cannot be
    reached, the last known instances stay (and a log line says so) until it answers again.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        services: Iterable[str] = (),
        wait: str = "30s",
        token: str | None = None,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 5.0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = url
        self.wait = wait
        self._token = token
        self._tls = tls  # mTLS on: the registry answers only holders of our certificates
        self._retry = (retry_seconds, max_retry_seconds)
        self._wanted: list[str] = list(dict.fromkeys(services))
        self._cache: dict[str, list[Instance]] = {}
        self._answered: dict[str, asyncio.Event] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._started = False

    async def start(self, *, first_answer_within: float = 2.0) -> None:
        """Start the watches and wait (a little) for their first answers."""
        self._started = True
        for service in self._wanted:
            self.watch(service)
        waits = [event.wait() for event in self._answered.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), first_answer_within)

    async def stop(self) -> None:
        self._started = False
        watches = list(self._watches.values())
        self._watches.clear()
        for task in watches:
            task.cancel()
        for task in watches:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def watch(self, service: str) -> None:
        """Keep `service`'s instances up to date from now on (idempotent)."""
        if service not in self._wanted:
            self._wanted.append(service)
        if service in self._watches or not self._started:
            return
        self._answered.setdefault(service, asyncio.Event())
        self._watches[service] = asyncio.create_task(self._watch(service), name=f"watch:{service}")

    def instances(self, service: str) -> list[Instance]:
        if service not in self._watches:
            self.watch(service)
        return list(self._cache.get(service, ()))

    def url(self, service: str) -> str:
        return first_url(self, service)

    def all(self) -> dict[str, str]:
        """{service: the first healthy instance's url}, over the watched services."""
        return {name: found[0].url for name, found in self._cache.items() if found}

    async def wait_for(self, service: str, count: int = 1, *, within: float = 10.0) -> list[Instance]:
        """Until `service` has at least `count` healthy instances (TimeoutError after `within`)."""
        self.watch(service)
        deadline = time.monotonic() + within
        while len(found := self.instances(service)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service}: {len(found)} healthy instance(s) after {within} s")
            await asyncio.sleep(0.05)
        return found

    async def _watch(self, service: str) -> None:
        client = consul_client(self.address, self._token, self._tls)
        index: str | None = None
        delay = self._retry[0]
        failing = False
        while True:
            started = time.monotonic()
            query = partial(client.health.service, service, passing=True, index=index, wait=self.wait)
            try:
                answer: tuple[str, list[dict[str, Any]]] = await in_thread(query)
            except Exception as exc:  # noqa: BLE001 - the registry may be down or restarting
                if not failing:
                    kept = len(self._cache.get(service, ()))
                    log.warning("registry.watch_failed", service=service, error=repr(exc), kept=kept)
                failing, index = True, None  # start over: the registry's indexes may have reset
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            if failing:
                log.info("registry.watch_recovered", service=service)
            failing, delay = False, self._retry[0]
            new_index, entries = answer
            found = [instance_from_entry(entry) for entry in entries]
            if found != self._cache.get(service):
                log.info("registry.instances", service=service, instances=[i.id for i in found])
            self._cache[service] = found
            self._answered[service].set()
            if new_index == index and time.monotonic() - started < 0.05:
                await asyncio.sleep(delay)  # a server that does not block must not make us spin
            # Consul: an index that goes backwards means a reset; query without one.
            index = new_index if index is None or int(new_index) >= int(index) else None


class ConsulRegistrar:
    """Registers this process's instance with an HTTP check, and deregisters it.

    `register()` registers at once, retrying while the registry is still starting.
    `keep_registered()` is what a service runs: in the background it waits until the instance's
    own health URL answers (the server listens only once the app's startup is over), registers
    it as passing, and registers it again whenever the registry has dropped it (it was critical
    for `deregister_after`, or the registry lost its state). `close()` deregisters those.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        retry_for: float = 30.0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = url
        self._token = token
        self._tls = tls  # mTLS on: shown to the registry and to this instance's own /health
        self.retry_for = retry_for
        self._kept: dict[str, asyncio.Task[None]] = {}

    async def register(
        self,
        instance: Instance,
        *,
        health_url: str,
        interval: str = "10s",
        timeout: str = "5s",
        deregister_after: str = "30s",
        status: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> None:
        """Register `instance` with an HTTP check on `health_url`; `status` sets the check's
        initial status (Consul starts a check critical)."""
        parts = urlsplit(instance.url)
        check: dict[str, Any] = consul.Check.http(
            health_url, interval, timeout=timeout, deregister=deregister_after
        )
        if status:
            check["Status"] = status
        if parts.scheme == "https":  # how callers reach it (instance_from_entry)
            meta = {**(meta or {}), "scheme": "https"}
        call = partial(
            consul_client(self.address, self._token, self._tls).agent.service.register,
            instance.service,
            service_id=instance.id,
            address=parts.hostname,
            port=parts.port,
            tags=sorted(instance.tags),
            check=check,
            meta=meta,
        )
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                await in_thread(call)
                return
            except Exception as exc:  # retried while the registry starts
                if time.monotonic() + delay > deadline:
                    raise
                log.info("registry.register_retry", instance=instance.id, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def deregister(self, instance_id: str) -> bool:
        """Remove the instance; False if the registry did not know it."""
        client = consul_client(self.address, self._token, self._tls)
        done: bool = await in_thread(partial(client.agent.service.deregister, instance_id))
        return done

    async def is_registered(self, instance_id: str) -> bool:
        client = consul_client(self.address, self._token, self._tls)
        found = await in_thread(partial(client.agent.service_definition, instance_id))
        return found is not None

    def keep_registered(
        self,
        instance: Instance,
        *,
        health_url: str,
        interval: str = "10s",
        timeout: str = "5s",
        deregister_after: str = "30s",
        every: float = 10.0,
    ) -> None:
        """Background registration (see the class docstring), looked at every `every` seconds."""
        if instance.id not in self._kept:
            options = {"interval": interval, "timeout": timeout, "deregister_after": deregister_after}
            keep = self._keep(instance, health_url, every, options)
            self._kept[instance.id] = asyncio.create_task(keep, name=f"register:{instance.id}")

    async def close(self, *, deregister: bool = True) -> None:
        """Stop the background registrations and (by default) deregister their instances."""
        kept, self._kept = self._kept, {}
        for task in kept.values():
            task.cancel()
        for instance_id, task in kept.items():
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if deregister:
                try:
                    await asyncio.wait_for(self.deregister(instance_id), 5.0)
                except Exception as exc:  # noqa: BLE001 - shutting down; the registry reaps it later
                    log.warning("registry.deregister_failed", instance=instance_id, error=repr(exc))

    async def _keep(self, instance: Instance, health_url: str, every: float, options: dict[str, str]) -> None:
        connector = aiohttp.TCPConnector(ssl=client_context(self._tls) or True)
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=2), connector=connector
        ) as session:
            while True:
                try:
                    if not await self.is_registered(instance.id):
                        await _until_healthy(session, health_url)
                        await self.register(
                            instance,
                            health_url=health_url,
                            interval=options["interval"],
                            timeout=options["timeout"],
                            deregister_after=options["deregister_after"],
                            status="passing",
                        )
                        log.info("registry.registered", instance=instance.id, tags=sorted(instance.tags))
                except Exception as exc:  # noqa: BLE001 - tried again on the next round
                    log.warning("registry.register_failed", instance=instance.id, error=repr(exc))
                await asyncio.sleep(every)


async def _until_healthy(session: aiohttp.ClientSession, health_url: str) -> None:
    while True:
        try:
            async with session.get(health_url) as response:
                if 200 <= response.status < 300:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
