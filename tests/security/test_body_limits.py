"""Request bodies past the limit are 413 `payload_too_large`: at the gateway for every method that
carries a body (declared or chunked, never forwarded), and in every service reached directly."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.signing import SigningKey
from tests.security.gateway_harness import echo_server, gateway

LIMIT = 1024 * 1024
METHODS = ("POST", "PUT", "PATCH", "DELETE")
SERVICES = ("inventory", "notification", "order", "payment", "product", "shipping", "user")


async def chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): only counting while reading catches it."""
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def refused(answer: httpx.Response) -> bool:
    return answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("method", METHODS)
async def test_the_gateway_refuses_an_oversized_body_for_every_method(tmp_path: Path, method: str) -> None:
    async with (
        echo_server() as echo,
        gateway(tmp_path, {"product": echo.url}, SigningKey.generate()) as (_, gw),
    ):
        fits = await gw.request(method, "/api/products/p1", content=b"x" * LIMIT)
        assert fits.status_code == 200 and fits.json()["body_length"] == LIMIT
        assert refused(await gw.request(method, "/api/products/p1", content=b"x" * (LIMIT + 1)))
        assert refused(await gw.request(method, "/api/products/p1", content=chunks(LIMIT + 1)))
        assert [seen["method"] for seen in echo.seen] == [method], "nothing oversized was forwarded"


def body_echo(tmp_path: Path, **settings: int) -> Service:
    service = Service(ServiceSettings(service_name="echo", data_dir=tmp_path, **settings), uses_bus=False)

    @service.app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    return service


async def test_a_service_refuses_an_oversized_body_declared_or_chunked(tmp_path: Path) -> None:
    service = body_echo(tmp_path, max_body_bytes=1000)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://echo") as client:
        assert (await client.post("/echo", content=b"x" * 1000)).json() == {"length": 1000}
        assert (await client.post("/echo", content=chunks(1000, 300))).json() == {"length": 1000}
        for content in (b"x" * 1001, chunks(1001, 300)):
            answer = await client.post("/echo", content=content)
            assert refused(answer), answer.text
            assert "x-request-id" in answer.headers  # answered inside the request middleware
        assert (await client.get("/health")).status_code == 200


@pytest.mark.parametrize("name", SERVICES)
async def test_every_service_refuses_an_oversized_body_when_called_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(f"MSASHOP_{name.upper()}_DATA_DIR", str(tmp_path))
    main = importlib.import_module(f"msashop.services.{name}.main")
    service: Service = main.create_service(bus=InMemoryBus())
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        # Refused before any route, database or token check: nothing of it is read.
        answer = await client.post("/anything", content=b"x" * (LIMIT + 1))
        assert refused(answer), answer.text


async def test_the_gateway_limit_is_its_setting(tmp_path: Path) -> None:
    async with echo_server() as echo:
        async with gateway(tmp_path, {"order": echo.url}, SigningKey.generate(), max_body_bytes=2048) as (
            _,
            gw,
        ):
            assert (await gw.post("/api/orders", content=b"x" * 2048)).status_code == 200
            assert refused(await gw.post("/api/orders", content=b"x" * 2049))
