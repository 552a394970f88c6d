"""Where the other services are. For now a port map the supervisor writes to the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from msashop.chassis.errors import UpstreamUnavailable


class PortMapDiscovery:
    """Reads `<data-dir>/ports.json` ({service: base url}); re-reads it when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._urls: dict[str, str] = {}

    def url(self, service: str) -> str:
        self._refresh()
        try:
            return self._urls[service]
        except KeyError:
            raise UpstreamUnavailable(f"no address known for service {service!r}") from None

    def all(self) -> dict[str, str]:
        self._refresh()
        return dict(self._urls)

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self._urls = json.loads(self.path.read_text())
            self._mtime = mtime


class StaticDiscovery:
    """Fixed addresses (tests, or Kubernetes DNS names)."""

    def __init__(self, urls: dict[str, str]) -> None:
        self._urls = dict(urls)

    def url(self, service: str) -> str:
        try:
            return self._urls[service]
        except KeyError:
            raise UpstreamUnavailable(f"no address known for service {service!r}") from None

    def all(self) -> dict[str, str]:
        return dict(self._urls)
