"""Where the other services are: the instances of each service that are healthy now.

`Discovery` is the port. Backends: `PortMapDiscovery` (a file the supervisor writes to the data
dir, `{service: url or [urls]}`), `StaticDiscovery` (fixed addresses: tests, or Kubernetes DNS
names where the platform balances), and the registry backend (Consul's HTTP API, our registry
or a real Consul agent), which keeps a watch per service. Reads are synchronous and served from
what the backend already knows, so picking an instance never waits on the network.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from msashop.chassis.errors import UpstreamUnavailable

_VERSION_TAG = re.compile(r"^v\d+$")


@dataclass(frozen=True)
class Instance:
    """One running copy of a service."""

    id: str
    service: str
    url: str  # base URL, no trailing slash
    tags: frozenset[str] = field(default_factory=frozenset)

    @cached_property  # asked for every proxied request (subset choice, metric label)
    def version(self) -> str:
        """The instance's version tag (`v1`, `v2`, ...); untagged instances are v1."""
        return next((t for t in sorted(self.tags) if _VERSION_TAG.match(t)), "v1")


class Discovery(Protocol):
    def instances(self, service: str) -> list[Instance]:
        """The service's healthy instances as last seen; empty if none (or unknown)."""
        ...

    def url(self, service: str) -> str:
        """One instance's base URL (the first); UpstreamUnavailable if there is none."""
        ...


def first_url(discovery: Discovery, service: str) -> str:
    found = discovery.instances(service)
    if not found:
        raise UpstreamUnavailable(f"no healthy instance known for service {service!r}")
    return found[0].url


def _instances(service: str, urls: str | list[str]) -> list[Instance]:
    listed = [urls] if isinstance(urls, str) else list(urls)
    return [
        Instance(id=f"{service}-{n}", service=service, url=url.rstrip("/"))
        for n, url in enumerate(listed, start=1)
    ]


class PortMapDiscovery:
    """Reads `<data-dir>/ports.json`; re-reads it when the file changes.

    It is asked on every call (the gateway: every proxied request), so it looks at the file at
    most once per `check_every` seconds (one `stat`), and parses it only when mtime, size or
    inode moved (the supervisor replaces it atomically). A missing file keeps what was read.
    """

    def __init__(
        self, path: Path, *, check_every: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.check_every = check_every
        self.clock = clock
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = float("-inf")
        self._instances: dict[str, list[Instance]] = {}

    def instances(self, service: str) -> list[Instance]:
        self._refresh()
        return list(self._instances.get(service, []))

    def url(self, service: str) -> str:
        return first_url(self, service)

    def all(self) -> dict[str, str]:
        """{service: the first instance's url} (what `msashop status` and the gateway's /health show)."""
        self._refresh()
        return {name: found[0].url for name, found in self._instances.items() if found}

    def _refresh(self) -> None:
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.check_every
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            raw: dict[str, str | list[str]] = json.loads(self.path.read_text())
            self._instances = {name: _instances(name, urls) for name, urls in raw.items()}
            self._stamp = stamp


class StaticDiscovery:
    """Fixed addresses (tests, or Kubernetes DNS names)."""

    def __init__(self, urls: dict[str, str | list[str]]) -> None:
        self._instances = {name: _instances(name, found) for name, found in urls.items()}

    def instances(self, service: str) -> list[Instance]:
        return list(self._instances.get(service, []))

    def url(self, service: str) -> str:
        return first_url(self, service)

    def all(self) -> dict[str, str]:
        return {name: found[0].url for name, found in self._instances.items() if found}


class DnsDiscovery:
    """Kubernetes (or any platform that balances behind one DNS name per service): every service
    is `template.format(service=...)`, e.g. `http://{service}.shop.svc.cluster.local:8000`."""

    def __init__(self, template: str) -> None:
        if "{service}" not in template:
            raise ValueError(f"the DNS template {template!r} must contain {{service}}")
        self.template = template

    def instances(self, service: str) -> list[Instance]:
        url = self.template.format(service=service).rstrip("/")
        return [Instance(id=service, service=service, url=url)]

    def url(self, service: str) -> str:
        return first_url(self, service)

    def all(self) -> dict[str, str]:
        return {}
