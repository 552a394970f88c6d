"""Calls to other services over HTTP (aiohttp): timeouts, request id and credentials forwarded."""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import structlog

from msashop.chassis import context
from msashop.chassis.errors import AppError, NotFound, UpstreamUnavailable

log = structlog.get_logger()


class Discovery(Protocol):
    def url(self, service: str) -> str: ...


class ServiceClient:
    def __init__(self, discovery: Discovery, *, timeout: float = 5.0, caller: str = "") -> None:
        self.discovery = discovery
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.caller = caller
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"X-Caller": self.caller} if self.caller else {}
        if rid := context.request_id.get():
            headers["X-Request-Id"] = rid
        if auth := context.authorization.get():
            headers["Authorization"] = auth
        return headers

    async def request(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        """Call `service` and return its JSON body; map failures to our error types."""
        url = self.discovery.url(service) + path
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        try:
            async with self._client().request(method, url, headers=headers, **kwargs) as response:
                body = await response.json(content_type=None) if response.content_length != 0 else None
                if response.status == 404:
                    raise NotFound(_message(body, f"{service} answered 404"))
                if response.status >= 500:
                    raise UpstreamUnavailable(f"{service} answered {response.status}")
                if response.status >= 400:
                    error = AppError(_message(body, f"{service} answered {response.status}"))
                    error.status_code = response.status
                    raise error
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("call.failed", upstream=service, path=path, error=type(exc).__name__)
            raise UpstreamUnavailable(f"{service} is unavailable") from exc

    async def get(self, service: str, path: str, **kwargs: Any) -> Any:
        return await self.request(service, "GET", path, **kwargs)

    async def post(self, service: str, path: str, **kwargs: Any) -> Any:
        return await self.request(service, "POST", path, **kwargs)


def _message(body: Any, default: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", default))
    return default
