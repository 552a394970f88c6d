"""The dead letters of a running platform, through the gateway's admin API (`msashop dlq`).

The gateway's address comes from `<data-dir>/ports.json`; the admin logs in through
`/api/auth/login`. Each service keeps its own dead letters: `/api/admin/dlq/<service>/...`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from msashop.supervisor.ports import read_port_map

TIMEOUT = 30.0
NOT_SERVICES = frozenset({"gateway"})


class DlqError(Exception):
    """Something the user can act on, said in one line."""


@dataclass(frozen=True)
class Platform:
    gateway_url: str
    services: tuple[str, ...]


def find_platform(data_dir: Path) -> Platform:
    ports_file = data_dir / "ports.json"
    try:
        urls = read_port_map(ports_file)
    except FileNotFoundError:
        raise DlqError(
            f"no running platform in {data_dir.resolve()} ({ports_file.name} not found); "
            "start it with `msashop up` or pass --data-dir"
        ) from None
    except ValueError as exc:
        raise DlqError(f"{ports_file} is unreadable: {exc}") from None
    if "gateway" not in urls:
        raise DlqError(f"{ports_file} names no gateway; is the platform running with its gateway?")
    return Platform(urls["gateway"], tuple(n for n in urls if n not in NOT_SERVICES))


def pick_services(platform: Platform, service: str | None) -> tuple[str, ...]:
    if service is None:
        return platform.services
    if service not in platform.services:
        raise DlqError(f"unknown service {service!r}; running: {', '.join(platform.services)}")
    return (service,)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return f"HTTP {self.status}"


class AdminApi:
    """An admin session on the gateway (use as an async context manager, then `login`)."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None

    async def __aenter__(self) -> AdminApi:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: Any = None) -> Answer:
        assert self._session is not None, "use AdminApi as an async context manager"
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with self._session.request(
                method, self.gateway_url + path, json=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DlqError(
                f"cannot reach the gateway at {self.gateway_url} ({type(exc).__name__}); "
                "is `msashop up` running?"
            ) from None
        try:
            return Answer(status, json.loads(text) if text else None)
        except ValueError:
            return Answer(status, text)

    async def login(self, email: str, password: str) -> None:
        answer = await self.call("POST", "/api/auth/login", {"email": email, "password": password})
        if answer.status == 401:
            raise DlqError(
                f"admin login as {email} refused; give the admin password with --admin-password "
                "or MSASHOP_ADMIN_PASSWORD"
            )
        if answer.status != 200 or not isinstance(answer.body, dict) or "access_token" not in answer.body:
            raise DlqError(f"admin login failed: {answer.message}")
        self._token = str(answer.body["access_token"])

    # --- dead letters -------------------------------------------------------------------------
    async def dead_letters(self, service: str, *, required: bool) -> list[dict[str, Any]]:
        """A service's dead letters. A service without a bus has none: [] unless `required`."""
        answer = await self.call("GET", _path(service))
        if answer.status == 404 and not required:
            return []
        _check(answer, f"list the dead letters of {service}")
        return list(answer.body)

    async def find(self, services: tuple[str, ...], dead_letter_id: str) -> tuple[str, dict[str, Any]]:
        """(service, dead letter) for an id, looked up in each of `services`."""
        for service in services:
            answer = await self.call("GET", _path(service, dead_letter_id))
            if answer.status == 200:
                return service, dict(answer.body)
            if answer.status != 404:
                _check(answer, f"look up {dead_letter_id} in {service}")
        where = services[0] if len(services) == 1 else "any service"
        raise DlqError(f"no dead letter {dead_letter_id!r} in {where}; `msashop dlq list` shows them")

    async def replay(self, service: str, dead_letter_id: str) -> None:
        answer = await self.call("POST", _path(service, dead_letter_id, "replay"))
        _check(answer, f"replay {dead_letter_id} in {service}")

    async def purge(self, service: str, dead_letter_id: str) -> None:
        answer = await self.call("DELETE", _path(service, dead_letter_id))
        _check(answer, f"purge {dead_letter_id} in {service}")

    async def replay_all(self, service: str, *, required: bool) -> int:
        answer = await self.call("POST", _path(service, "replay"))
        if answer.status == 404 and not required:
            return 0
        _check(answer, f"replay the dead letters of {service}")
        return int(answer.body["replayed"])

    async def purge_all(self, service: str, *, required: bool) -> int:
        answer = await self.call("DELETE", _path(service))
        if answer.status == 404 and not required:
            return 0
        _check(answer, f"purge the dead letters of {service}")
        return int(answer.body["purged"])


def _path(service: str, *rest: str) -> str:
    return "/".join(["/api/admin/dlq", quote(service, safe=""), *(quote(p, safe="") for p in rest)])


def _check(answer: Answer, doing: str) -> None:
    if answer.status == 404:
        raise DlqError(f"cannot {doing}: {answer.message} (does that service use the bus?)")
    if answer.status in (401, 403):
        raise DlqError(f"cannot {doing}: the gateway refused the admin session ({answer.message})")
    if not 200 <= answer.status < 300:
        raise DlqError(f"cannot {doing}: {answer.message}")
