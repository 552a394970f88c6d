"""The registry on a real socket in the test's event loop, a health endpoint the test can break,
and py-consul (synchronous) called from threads so the loop keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import consul
import pytest
import uvicorn
from aiohttp import web

from msashop.registry.agent import RegistryAgent
from msashop.registry.config import RegistrySettings
from msashop.registry.main import create_service
from tests.conftest import free_port


class RegistryServer:
    """One registry process's worth, in-process; `restart()` keeps the data dir and the port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.agent: RegistryAgent | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        return consul.Consul(host="127.0.0.1", port=self.port)

    async def start(self) -> None:
        settings = RegistrySettings.load("registry", data_dir=self.data_dir, port=self.port, env="test")
        service = create_service(settings)
        config = uvicorn.Config(
            service.app,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                break
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError("the registry did not start")
        self.agent = service.app.state.registry

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
            self.server = self.task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryServer]:
    server = RegistryServer(tmp_path / "data")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A py-consul call in a thread (it is synchronous; the registry shares this loop)."""
    return await asyncio.to_thread(function, *args, **kwargs)


class Target:
    """An instance's /health whose answer the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.calls = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        async def health(_: web.Request) -> web.Response:
            self.calls += 1
            return web.json_response({"status": "ok" if self.status < 300 else "no"}, status=self.status)

        app = web.Application()
        app.router.add_get("/health", health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    found = Target()
    await found.start()
    try:
        yield found
    finally:
        await found.stop()
