"""Forwarding one request to a service over the gateway's shared connection pool."""

from __future__ import annotations

import aiohttp
import structlog
import yarl
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from msashop.chassis.errors import AppError, UpstreamUnavailable
from msashop.chassis.service_client import Discovery
from msashop.gateway.config import GatewaySettings
from msashop.gateway.headers import Header, downstream_headers
from msashop.gateway.routes import Target

log = structlog.get_logger()

# The request histogram labels every proxied call "/api/{path:path}"; this says where it went.
upstream_requests_total = Counter(
    "gateway_upstream_requests_total",
    "Requests the gateway forwarded, by service and answer (`unavailable`: no answer)",
    ["service", "status_code"],
)


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class Upstreams:
    """One aiohttp session (connection pool) for every call to the services."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.max_connections),
            timeout=aiohttp.ClientTimeout(
                total=self.settings.upstream_timeout_seconds,
                sock_connect=self.settings.connect_timeout_seconds,
            ),
            # A proxy must not keep cookies (they would leak between users), decompress bodies
            # (the client asked for that encoding, not us) or invent headers the client did not send.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("gateway upstream pool used before startup")
        return self._session

    async def read_body(self, request: Request) -> bytes:
        """The request body, refused with 413 past the limit (checked before and while reading)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        return bytes(body)

    async def forward(
        self,
        discovery: Discovery,
        target: Target,
        method: str,
        query: str,
        headers: list[Header],
        body: bytes,
    ) -> Response:
        """Send the request to `target.service` and return its answer, errors included, unchanged."""
        service = target.service
        try:
            base_url = discovery.url(service)
        except UpstreamUnavailable:
            upstream_requests_total.labels(service=service, status_code="unavailable").inc()
            raise UpstreamUnavailable(
                f"{service} service has no known address", details={"service": service}
            ) from None
        # `encoded=True`: the client's path and query reach the service byte for byte.
        url = yarl.URL(base_url.rstrip("/") + target.path + (f"?{query}" if query else ""), encoded=True)
        try:
            async with self.session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False
            ) as answer:
                content = await answer.read()
                status = answer.status
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream_requests_total.labels(service=service, status_code="unavailable").inc()
            log.warning("upstream.unavailable", upstream=service, error=type(exc).__name__)
            raise UpstreamUnavailable(
                f"{service} service is unavailable", details={"service": service}
            ) from None
        upstream_requests_total.labels(service=service, status_code=str(status)).inc()
        response = Response(content=content, status_code=status)
        response.raw_headers.extend(
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in downstream_headers(raw)
        )
        return response

    async def ready(self, discovery: Discovery, service: str) -> str:
        """`ok` when the service answers its /ready with 200, else why not."""
        try:
            url = discovery.url(service).rstrip("/") + "/ready"
        except UpstreamUnavailable:
            return "down: no address known"
        timeout = aiohttp.ClientTimeout(total=self.settings.health_timeout_seconds)
        try:
            async with self.session.get(url, timeout=timeout, allow_redirects=False) as answer:
                return "ok" if answer.status == 200 else f"down: answered {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"down: {type(exc).__name__}"
