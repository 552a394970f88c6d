"""Answers cross the gateway as the service framed them: streamed, chunked, HEAD, no body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tests.integration.gateway.conftest import Gateway, Upstream


@asynccontextmanager
async def raw_instance(
    id: str, answer: Callable[[bytes, asyncio.StreamWriter], object]
) -> AsyncIterator[Upstream]:
    """An instance whose answers a test writes byte by byte (`answer(request_head, writer)`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await answer(head, writer)  # type: ignore[misc]
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield Upstream(id, url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    finally:
        server.close()


async def test_a_chunked_answer_is_relayed_piece_by_piece(gateway: Gateway) -> None:
    async def chunks(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: stream\r\n\r\n")
        for n in range(5):
            writer.write(b"%x\r\n%s\r\n" % (len(b"part%d;" % n), b"part%d;" % n))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")

    async with raw_instance("p-1", chunks) as instance:
        await gateway.add(instance)
        answer = await gateway.client.get("/api/products")
    assert answer.status_code == 200 and answer.headers["x-kind"] == "stream"
    assert answer.content == b"part0;part1;part2;part3;part4;"


async def test_a_large_answer_streams_through_whole(gateway: Gateway) -> None:
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB: over the read-whole size and the buffer limit

    async def large(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big))
        for start in range(0, len(big), 65536):
            writer.write(big[start : start + 65536])
            await writer.drain()

    async with raw_instance("p-1", large) as instance:
        await gateway.add(instance)
        answer = await gateway.client.get("/api/products")
    assert answer.headers["content-length"] == str(len(big)) and answer.content == big


async def test_head_keeps_the_length_and_204_has_none(gateway: Gateway) -> None:
    async def head_or_204(request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: application/json\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with raw_instance("p-1", head_or_204) as instance:
        await gateway.add(instance)
        head = await gateway.client.head("/api/products")
        deleted = await gateway.client.delete("/api/products/p1")
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "1234", b"")
    assert deleted.status_code == 204 and "content-length" not in deleted.headers


async def test_a_service_that_stalls_mid_body_cuts_the_client_off(gateway: Gateway) -> None:
    gateway.service.settings.upstream_timeout_seconds = 0.3  # type: ignore[attr-defined]

    async def stall(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 1000)
        await asyncio.sleep(5)

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/products",
        "raw_path": b"/api/products",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gw")],
        "client": ("127.0.0.1", 5000),
        "server": ("gw", 80),
        "state": {},
    }
    async with raw_instance("p-1", stall) as instance:
        await gateway.add(instance)
        await gateway.service.app(scope, receive, send)  # type: ignore[arg-type]
    # Headers and the first part went out; the end never does, so the server closes the
    # connection and the client cannot take the part for the whole.
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert sent[1:] == [{"type": "http.response.body", "body": b"x" * 1000, "more_body": True}]
