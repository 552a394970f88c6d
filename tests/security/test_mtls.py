"""Mutual TLS between services (issue 7): a real uvicorn server with the options `msashop serve`
gives it when mTLS is on, on certificates from a CA made for the test.

Only a client showing a certificate from our CA gets an answer; plain HTTP, no certificate or
another CA's certificate are refused in the handshake. The platform's own clients (the chassis
ServiceClient, the gateway's upstream pool, the registry's checks) get through with theirs.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from msashop.chassis.discovery import StaticDiscovery
from msashop.chassis.errors import UpstreamUnavailable
from msashop.chassis.service_client import ServiceClient
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.tls import TlsFiles, client_context, uvicorn_options
from msashop.gateway.http1 import Client, request_head
from msashop.registry.checks import probe
from msashop.registry.model import CheckSpec
from msashop.supervisor.certificates import ensure
from tests.conftest import free_port


async def _health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "product"})


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tls"
    ensure(directory, ["product", "order", "gateway", "registry"])
    return directory


@pytest.fixture
async def product(tls_dir: Path) -> AsyncIterator[int]:
    """The product service's port: uvicorn serving HTTPS with client certificates required."""
    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[Route("/health", _health)]),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        **uvicorn_options(TlsFiles.of(tls_dir, "product")),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task


async def _get(url: str, context: ssl.SSLContext | bool) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(url, ssl=context) as response,
    ):
        return response.status, await response.json()


def _trusting_our_ca(tls_dir: Path) -> ssl.SSLContext:
    """Trusts our CA (so the server is not what fails) but shows no certificate."""
    return ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))


async def test_a_client_with_a_certificate_from_our_ca_is_answered(tls_dir: Path, product: int) -> None:
    context = client_context(TlsFiles.of(tls_dir, "order"))
    assert context is not None

    status, body = await _get(f"https://127.0.0.1:{product}/health", context)

    assert (status, body) == (200, {"status": "ok", "service": "product"})


async def test_plain_http_to_the_service_port_gets_no_http_answer(product: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", product)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(1024), 5)
    except ConnectionError:
        answer = b""
    writer.close()

    assert not answer.startswith(b"HTTP/"), answer  # a TLS alert or a closed connection, no page
    with pytest.raises(aiohttp.ClientError):
        await _get(f"http://127.0.0.1:{product}/health", False)


async def test_a_client_without_a_certificate_is_refused(tls_dir: Path, product: int) -> None:
    with pytest.raises(aiohttp.ClientError):
        await _get(f"https://127.0.0.1:{product}/health", _trusting_our_ca(tls_dir))


async def test_a_client_with_a_certificate_from_another_ca_is_refused(
    tls_dir: Path, product: int, tmp_path: Path
) -> None:
    # A certificate named like ours, with the same extensions, signed by a CA we never trusted.
    ensure(tmp_path / "elsewhere", ["order"])
    impostor = TlsFiles.of(tmp_path / "elsewhere", "order")
    context = _trusting_our_ca(tls_dir)
    context.load_cert_chain(impostor.cert, impostor.key)

    with pytest.raises(aiohttp.ClientError):
        await _get(f"https://127.0.0.1:{product}/health", context)


async def test_the_service_client_built_from_a_services_settings_calls_over_mtls(
    tls_dir: Path, product: int, tmp_path: Path
) -> None:
    settings = ServiceSettings.load("order", data_dir=tmp_path, tls_dir=tls_dir)
    discovery = StaticDiscovery({"product": f"https://127.0.0.1:{product}"})
    client = ServiceClient(discovery, ssl_context=client_context(settings.tls_files()))
    without_certificate = ServiceClient(discovery, ssl_context=_trusting_our_ca(tls_dir))
    try:
        assert await client.get("product", "/health") == {"status": "ok", "service": "product"}
        with pytest.raises(UpstreamUnavailable):
            await without_certificate.get("product", "/health")
    finally:
        await client.close()
        await without_certificate.close()


async def test_the_gateways_upstream_pool_calls_over_mtls(tls_dir: Path, product: int) -> None:
    client = Client(connect_timeout=2, tls=client_context(TlsFiles.of(tls_dir, "gateway")))
    origin = client.origin(f"https://127.0.0.1:{product}")
    connection = await origin.connection()
    try:
        head = request_head("GET", b"/health", origin.host_header, [], None)
        await connection.exchange(head, b"", is_head=False, timeout=5)
        assert connection.status == 200
    finally:
        connection.release()
        client.close()


async def test_the_registrys_health_checks_pass_with_its_certificate_only(
    tls_dir: Path, product: int
) -> None:
    spec = CheckSpec(
        id="service:product",
        name="product",
        kind="http",
        http=f"https://127.0.0.1:{product}/health",
        interval=10,
        timeout=2,
    )
    context = client_context(TlsFiles.of(tls_dir, "registry"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        status, _ = await probe(session, spec)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=_trusting_our_ca(tls_dir))
    ) as session:
        refused, output = await probe(session, spec)

    assert status == "passing"
    assert refused == "critical", output
