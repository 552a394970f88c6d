"""The real gateway app in-process, in front of upstreams on real sockets: an echo server (what a
service received) or a real service app served by uvicorn (the user service, for cookie sessions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiohttp import web
from starlette.types import ASGIApp

from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.service import Service
from msashop.chassis.signing import SigningKey
from msashop.gateway.config import GatewaySettings
from msashop.gateway.main import create_service
from tests.conftest import free_port

SERVICES = ("inventory", "legacy", "notification", "order", "payment", "product", "shipping", "user")


@dataclass
class Echo:
    """An upstream answering every request with what it received."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    echo = Echo()

    async def answer(request: web.Request) -> web.Response:
        seen = {
            "method": request.method,
            "path": request.rel_url.raw_path,
            "body_length": len(await request.read()),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        echo.seen.append(seen)
        return web.json_response(seen)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    echo.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield echo
    finally:
        await runner.cleanup()


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """An ASGI app (already started by its caller's lifespan) on a real port; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def gateway(
    tmp_path: Path, urls: dict[str, str], key: SigningKey, **settings: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """The gateway, every service at `urls` (the rest at the first one), trusting `key`'s tokens."""
    settings.setdefault("rate_limits", False)  # these tests are about other answers
    service = create_service(GatewaySettings.load("gateway", data_dir=tmp_path / "gateway", **settings))
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    default = next(iter(urls.values()))
    async with service.app.router.lifespan_context(service.app):
        service.discovery = StaticDiscovery({name: urls.get(name, default) for name in SERVICES})  # type: ignore[assignment]
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield service, client
