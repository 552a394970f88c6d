"""The gateway's HTTP/1.1 client for its hop to the services: keep-alive connections per instance.

One request at a time per connection (no pipelining); responses are parsed by httptools (the
parser uvicorn uses on the server side) and streamed to the caller as they arrive. Why not
aiohttp: on the gateway's path it cost ~90 us of CPU per call against ~20 us for this (measured
on the bench machine), and the gateway pays that on every request. What it leaves out, because
the gateway never needs it: redirects, cookies, decompression, proxies, HTTP/2, upgrades.

Errors say how far the request got, which decides whether it may be sent again elsewhere:
`ConnectFailed` (nothing reached the service), `UpstreamReset` (the connection broke, maybe
after the service saw the request), `UpstreamTimeout` (no answer in time).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httptools

RawHeaders = list[tuple[bytes, bytes]]

# Answers with a Content-Length up to this are read whole before the caller sees them.
WHOLE_UP_TO = 64 * 1024
# Reading from the service pauses while this much of its answer waits for the client.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class UpstreamError(Exception):
    """The service gave no (complete) answer."""


class ConnectFailed(UpstreamError):
    """No connection (refused, unreachable, connect timeout): nothing reached the service."""


class UpstreamReset(UpstreamError):
    """The connection closed or broke before the answer was complete."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """No answer (or no more of it) within the time allowed."""


class Connection(asyncio.Protocol):
    """One keep-alive connection to one instance; `exchange` sends a request, `read` its body."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        # Kept: on Python 3.11 every `asyncio.get_running_loop()` is a getpid() system call.
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.busy = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: RawHeaders = []
        self.complete = False  # the whole answer is in (chunks may still wait to be read)
        self.reusable = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._headers_done = False
        self._answered = False  # what `exchange` waits for: the headers, or a small answer whole
        self._informational = False
        self._until_eof = False  # no Content-Length, not chunked: the body ends with the connection
        self._head = False
        self._paused = False

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.origin.forget(self)
        if not self.busy or self.complete:
            return
        if self._until_eof and self._headers_done:
            self._finish(reusable=False)  # the close is the end of the body
        else:
            self._fail(UpstreamReset("the service closed the connection before answering in full"))

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.complete:
            # Bytes nobody asked for: the connection's framing is lost, never reuse it.
            self._close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamReset(f"the service's answer is not valid HTTP/1.1: {exc}"))
            self._close()

    # --- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: never trust this connection again
            self.reusable = False

    def on_header(self, name: bytes, value: bytes | None) -> None:
        if not self.complete:
            self.headers.append((name, value or b""))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and friends: the real answer follows
            self._informational, self.headers = True, []
            return
        self.status, self._headers_done = status, True
        if self._head or status in (204, 304):
            self._finish(reusable=not self._head)  # no body; after HEAD the parser expects one
            return
        length: int | None = None
        chunked = False
        for name, value in self.headers:
            lname = name.lower()
            if lname == b"content-length" and value.strip().isdigit():
                length = int(value)
            elif lname == b"transfer-encoding":
                chunked = True
        self._until_eof = length is None and not chunked
        # A small answer is awaited whole (usually it is in the same read or the next one): the
        # client then gets it in one go rather than as headers, a chunk and an end.
        if chunked or length is None or length > WHOLE_UP_TO:
            self._answered = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # a body after HEAD (the parser cannot be told there is none): not the client's
        self._chunks.append(body)
        self._buffered += len(body)
        self._wake()
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self._informational:
            self._informational = False
            return
        self._finish(reusable=self.parser.should_keep_alive() and not self._until_eof)

    # --- the caller's side --------------------------------------------------------------------
    async def exchange(self, head: bytes, body: bytes, *, is_head: bool, timeout: float) -> None:
        """Send one request; return when the answer's status and headers are in (a small answer:
        all of it), or raise."""
        assert self.transport is not None and not self.busy
        self._reset()
        self.busy, self._head = True, is_head
        self.transport.write(head + body if body else head)
        if not self._answered and self._error is None:
            deadline = self.loop.time() + timeout
            while not self._answered and self._error is None:
                await self._wait(deadline)
        if self._error is not None:
            raise self._error

    async def read(self, timeout: float) -> bytes:
        """The next piece of the body; b"" at its end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            await self._wait(self.loop.time() + timeout)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def body_if_complete(self) -> bytes | None:
        """The whole body when it is already in (the usual case for small answers), else None."""
        if not self.complete or self._error is not None:
            return None
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    def release(self) -> None:
        """Done with this answer: back to the pool if the exchange ended cleanly, else closed."""
        self.busy = False
        if self.complete and self.reusable and not self._chunks and not self.closed:
            self.origin.put_back(self)
        else:
            self._close()

    # --- internals ----------------------------------------------------------------------------
    async def _wait(self, deadline: float) -> None:
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_at(deadline, self._time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._fail(UpstreamTimeout("the service did not answer in time"))
            self._close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _finish(self, *, reusable: bool) -> None:
        self._headers_done = self._answered = self.complete = True
        self.reusable = reusable
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._wake()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()  # never a half-read answer left for the next request
        self.closed = True
        self.origin.forget(self)


class Origin:
    """The idle keep-alive connections to one instance (most recently used first)."""

    def __init__(
        self, url: str, *, connect_timeout: float, max_idle: int, tls: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        # `tls`: what https origins are connected with (mTLS: our certificate, our CA only).
        self.tls = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        self.host_header = parts.netloc.encode("latin-1")
        self.base_path = parts.path.rstrip("/").encode("latin-1")  # a URL may carry a path prefix
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: list[Connection] = []

    async def connection(self) -> Connection:
        """An idle connection if there is one, else a new one (ConnectFailed when that fails)."""
        while self._idle:
            found = self._idle.pop()
            if not found.closed:
                return found
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: Connection(self, loop), self.host, self.port, ssl=self.tls
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {type(exc).__name__}") from exc
        return protocol

    def put_back(self, connection: Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection._close()

    def forget(self, connection: Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in list(self._idle):
            connection._close()
        self._idle.clear()


class Client:
    """Origins by base URL; what `Upstreams` sends requests through."""

    def __init__(
        self, *, connect_timeout: float, max_idle: int = 100, tls: ssl.SSLContext | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.tls = tls
        self._origins: dict[str, Origin] = {}

    def origin(self, url: str) -> Origin:
        found = self._origins.get(url)
        if found is None:
            found = self._origins[url] = Origin(
                url, connect_timeout=self.connect_timeout, max_idle=self.max_idle, tls=self.tls
            )
        return found

    def close(self) -> None:
        for origin in self._origins.values():
            origin.close()
        self._origins.clear()


def request_head(
    method: str, target: bytes, host: bytes, headers: RawHeaders, body_length: int | None
) -> bytes:
    """The request line and headers; `body_length` None: no Content-Length (a bodiless request)."""
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    if body_length is not None:
        lines += [b"Content-Length: ", str(body_length).encode(), b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)
