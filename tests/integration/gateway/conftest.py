"""Real aiohttp upstream instances, tagged by version, behind the real gateway app."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from msashop.chassis.discovery import Instance
from msashop.chassis.service import Service
from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service
from msashop.gateway.mesh import Mesh


@dataclass
class Upstream:
    """One instance of a service: answers with its id; can be told to fail (500) or hold requests."""

    id: str
    service: str = "product"
    version: str = "v1"
    url: str = ""
    failing: bool = False
    failing_status: int = 500  # what it answers while failing
    gate: asyncio.Event | None = None  # set: requests wait until it opens
    paths: list[str] = field(default_factory=list)

    @property
    def instance(self) -> Instance:
        return Instance(self.id, self.service, self.url, frozenset({self.version}))

    async def answer(self, request: web.Request) -> web.Response:
        self.paths.append(request.rel_url.raw_path)
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            body = {"error": {"code": "boom", "message": "boom"}}
            return web.json_response(body, status=self.failing_status)
        return web.json_response({"instance": self.id, "version": self.version})

    async def start(self) -> web.AppRunner:
        runner, self.url = await serve(self.answer)
        return runner


async def serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> tuple[web.AppRunner, str]:
    """`handler` answering every method and path on a free local port: the runner and its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


@contextlib.contextmanager
def hung(id: str, service: str = "product") -> Iterator[Upstream]:
    """An instance that accepts connections and never answers (what a SIGSTOP'd process looks
    like from outside: the kernel completes the handshake and buffers the request)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        yield Upstream(id, service, url=f"http://127.0.0.1:{listener.getsockname()[1]}")


def dead(id: str, service: str = "product") -> Upstream:
    """An instance at an address nobody listens on (connections refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return Upstream(id, service, url=f"http://127.0.0.1:{s.getsockname()[1]}")


class TaggedDiscovery:
    """The Discovery port over the test's instances, tags included."""

    def __init__(self, upstreams: list[Upstream]) -> None:
        self.upstreams = upstreams

    def instances(self, service: str) -> list[Instance]:
        return [u.instance for u in self.upstreams if u.service == service]

    def url(self, service: str) -> str:
        return self.instances(service)[0].url


@dataclass
class Gateway:
    service: Service
    client: httpx.AsyncClient
    traffic_file: Path
    upstreams: list[Upstream] = field(default_factory=list)
    start: Callable[[Upstream], Awaitable[None]] | None = None

    @property
    def mesh(self) -> Mesh:
        mesh: Mesh = self.service.app.state.mesh
        return mesh

    def rules(self, text: str) -> None:
        """Write the traffic file; the next request reads it (checked on every request here)."""
        self.traffic_file.write_text(text)

    async def add(self, *upstreams: Upstream) -> None:
        for upstream in upstreams:
            assert self.start is not None
            await self.start(upstream)
            self.upstreams.append(upstream)

    async def spread(
        self, path: str, n: int, *, batch: int = 50, headers: dict[str, str] | None = None
    ) -> Counter[str]:
        """n requests (`batch` at a time); how many each instance answered, or the error status."""
        seen: Counter[str] = Counter()
        for start in range(0, n, batch):
            answers = await asyncio.gather(
                *(self.client.get(path, headers=headers) for _ in range(min(batch, n - start)))
            )
            seen.update(a.json()["instance"] if a.status_code == 200 else str(a.status_code) for a in answers)
        return seen


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    # Traffic tests send hundreds of requests from one client; rate limits have their own tests.
    settings = GatewaySettings.load("gateway", data_dir=tmp_path, traffic_check_seconds=0, rate_limits=False)
    service = create_service(settings)
    runners: list[web.AppRunner] = []

    async def start(upstream: Upstream) -> None:
        if not upstream.url:
            runners.append(await upstream.start())

    try:
        async with service.app.router.lifespan_context(service.app):
            transport = httpx.ASGITransport(app=service.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
                assert settings.traffic_file is not None
                gw = Gateway(service, client, settings.traffic_file, start=start)
                gw.mesh.rng = random.Random(2024)
                service.discovery = TaggedDiscovery(gw.upstreams)  # type: ignore[assignment]
                yield gw
    finally:
        for runner in runners:
            await runner.cleanup()
