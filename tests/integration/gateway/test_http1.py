"""The gateway's HTTP/1.1 client against a raw socket server that answers exactly what a test scripts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from msashop.gateway.http1 import (
    Client,
    ConnectFailed,
    Connection,
    UpstreamReset,
    UpstreamTimeout,
    request_head,
)

Answer = Callable[[bytes], list[bytes] | None]  # request head -> the pieces to write (None: hang)


@dataclass
class Scripted:
    """Answers each request with `answer(head)`; counts connections and keeps the request heads."""

    answer: Answer
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    close_after: bool = False
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                pieces = self.answer(head)
                if pieces is None:
                    await asyncio.sleep(3600)
                    return
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[Scripted]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer, **options: bool) -> Scripted:
        scripted = Scripted(answer, **options)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        scripted.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return scripted

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    found = Client(connect_timeout=1.0)
    yield found
    found.close()


async def call(
    client: Client, url: str, method: str = "GET", *, body: bytes = b"", timeout: float = 2.0
) -> tuple[Connection, bytes]:
    origin = client.origin(url)
    head = request_head(method, b"/x", origin.host_header, [(b"Accept", b"*/*")], len(body) if body else None)
    connection = await origin.connection()
    try:
        await connection.exchange(head, body, is_head=method == "HEAD", timeout=timeout)
        content = b""
        while chunk := await connection.read(timeout):
            content += chunk
    finally:
        connection.release()
    return connection, content


def ok(body: bytes = b"hello", *extra: bytes) -> Answer:
    return lambda _: [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body), *extra, b"\r\n", body]


async def test_keep_alive_connections_are_reused(serve, client: Client) -> None:
    server = await serve(ok())
    for _ in range(5):
        connection, body = await call(client, server.url)
        assert (connection.status, body) == (200, b"hello")
    assert server.connections == 1
    assert server.heads[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_headers_and_body_in_separate_writes_are_one_answer(serve, client: Client) -> None:
    server = await serve(lambda _: [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n", b"he", b"llo"])
    connection, body = await call(client, server.url)
    assert body == b"hello" and (b"X-A", b"1") in connection.headers


async def test_a_chunked_answer_is_read_to_its_end(serve, client: Client) -> None:
    chunked = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"3\r\nabc\r\n",
        b"2\r\nde\r\n0\r\n\r\n",
    ]
    server = await serve(lambda _: chunked)
    for _ in range(2):
        _, body = await call(client, server.url)
        assert body == b"abcde"
    assert server.connections == 1


async def test_a_body_without_length_ends_with_the_connection(serve, client: Client) -> None:
    server = await serve(
        lambda _: [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"until ", b"close"], close_after=True
    )
    _, body = await call(client, server.url)
    assert body == b"until close"
    _, body = await call(client, server.url)  # a new connection: the old one ended with the body
    assert body == b"until close" and server.connections == 2


async def test_head_and_204_have_no_body(serve, client: Client) -> None:
    server = await serve(lambda _: [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"])
    connection, body = await call(client, server.url, "HEAD")
    assert (connection.status, body, (b"Content-Length", b"10") in connection.headers) == (200, b"", True)
    # A server that sends a body anyway: it does not reach the client.
    rude = await serve(ok(b"x" * 10))
    connection, body = await call(client, rude.url, "HEAD")
    assert (connection.status, body) == (200, b"")
    no_content = await serve(lambda _: [b"HTTP/1.1 204 No Content\r\n\r\n"])
    for _ in range(2):
        connection, body = await call(client, no_content.url, "DELETE")
        assert (connection.status, body) == (204, b"")
    assert no_content.connections == 1


async def test_100_continue_is_skipped(serve, client: Client) -> None:
    server = await serve(
        lambda _: [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"]
    )
    connection, body = await call(client, server.url, "POST", body=b"{}")
    assert (connection.status, body) == (201, b"ok")


async def test_a_close_before_the_answer_is_a_reset(serve, client: Client) -> None:
    server = await serve(lambda _: [b"HTTP/1.1 200 OK\r\nContent-Le"], close_after=True)
    with pytest.raises(UpstreamReset):
        await call(client, server.url)


async def test_a_cut_body_is_a_reset_not_a_short_answer(serve, client: Client) -> None:
    big = 100 * 1024  # over the size read whole: streamed, so the cut shows while reading
    server = await serve(
        lambda _: [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big, b"x" * 1000], close_after=True
    )
    with pytest.raises(UpstreamReset):
        await call(client, server.url)


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped(serve, client: Client) -> None:
    server = await serve(lambda _: None)
    with pytest.raises(UpstreamTimeout):
        await call(client, server.url, timeout=0.2)
    assert client.origin(server.url)._idle == []


async def test_a_refused_connection_is_a_connect_failure(client: Client) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ConnectFailed):
        await call(client, url)


async def test_bytes_after_the_answer_drop_the_connection(serve, client: Client) -> None:
    server = await serve(ok(b"hi", b"X-B: 2\r\n"))
    server.answer = lambda _: [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA"]
    await call(client, server.url)
    await asyncio.sleep(0.05)
    _, body = await call(client, server.url)
    assert body == b"hi" and server.connections == 2


async def test_a_second_answer_to_one_request_changes_nothing_and_drops_the_connection(
    serve, client: Client
) -> None:
    twice = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-N: 1\r\n\r\nhi"
    server = await serve(lambda _: [twice + twice.replace(b"X-N: 1", b"X-N: 2").replace(b"hi", b"ho")])
    connection, body = await call(client, server.url)
    assert (body, [v for n, v in connection.headers if n == b"X-N"]) == (b"hi", [b"1"])
    await call(client, server.url)
    assert server.connections == 2
