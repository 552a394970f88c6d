"""Is it up? Readiness probes for HTTP services, nats-server and Valkey/Redis."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from types import TracebackType

import aiohttp

TIMEOUT = 2.0


class Prober:
    """One HTTP session for all the polling a platform start does. `ssl_context`: what https URLs
    are asked with (mTLS on: the supervisor's certificate and our CA; set once they exist)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.ssl_context = ssl_context

    async def __aenter__(self) -> Prober:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def http(self, url: str) -> tuple[int, str]:
        """Status and body of GET `url`; 0 and the error when nothing answered."""
        assert self._session is not None, "use Prober as an async context manager"
        try:
            async with self._session.get(url, ssl=self.ssl_context or True) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return 0, f"{type(exc).__name__}: {exc}".rstrip(": ")

    async def service_ready(self, base_url: str) -> bool:
        """/ready answers 200; a component without /ready (404) counts when /health is 200."""
        status, _ = await self.http(f"{base_url}/ready")
        if status == 404:
            status, _ = await self.http(f"{base_url}/health")
        return status == 200


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def redis_ping(host: str, port: int) -> bool:
    """True when a Redis-protocol server answers PING with PONG (not -LOADING while it replays)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), TIMEOUT)
        return answer.startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
