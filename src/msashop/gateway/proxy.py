"""Forwarding one request to an instance of a service over the gateway's shared connection pool."""

from __future__ import annotations

import aiohttp
import structlog
import yarl
from starlette.requests import Request
from starlette.responses import Response

from msashop.chassis.discovery import Discovery, Instance
from msashop.chassis.errors import AppError, UpstreamUnavailable
from msashop.gateway.config import GatewaySettings
from msashop.gateway.headers import Header, downstream_headers
from msashop.gateway.limits import UpstreamOverloaded
from msashop.gateway.mesh import Mesh
from msashop.gateway.metrics import limit_rejections_total, upstream_requests_total
from msashop.gateway.rules import Plan

log = structlog.get_logger()

# Istio's default retry policy for connect-failure: a refused connection reached nobody, so
# another instance may take the request, whatever its method.
CONNECT_RETRIES = 2


def _unavailable(service: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{service} service is unavailable", details={"service": service})


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class Upstreams:
    """One aiohttp session (connection pool) for every call to the services."""

    def __init__(self, settings: GatewaySettings, mesh: Mesh) -> None:
        self.settings = settings
        self.mesh = mesh
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            # No pool-wide cap: each service's own limiter (limits.py) bounds its connections,
            # and a shared cap would queue one service's calls behind another's.
            connector=aiohttp.TCPConnector(limit=0),
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
        plan: Plan,
        method: str,
        query: str,
        headers: list[Header],
        body: bytes,
    ) -> Response:
        """Send the request to an instance of `plan.service`; its answer, errors included, unchanged."""
        limiter = self.mesh.upstream(plan.service).limiter
        try:
            await limiter.acquire()
        except UpstreamOverloaded as exc:
            limit_rejections_total.labels(service=plan.service).inc()
            exc.details = {"service": plan.service}
            raise
        try:
            return await self._send(discovery, plan, method, query, headers, body)
        finally:
            limiter.release()

    async def _send(
        self,
        discovery: Discovery,
        plan: Plan,
        method: str,
        query: str,
        headers: list[Header],
        body: bytes,
    ) -> Response:
        service, tried = plan.service, list[str]()
        suffix = plan.path + (f"?{query}" if query else "")
        while True:
            try:
                instance = self.mesh.pick(discovery, service, plan.subset, tried)
            except UpstreamUnavailable:
                if tried:  # the instances we tried refused the connection (counted), none is left
                    raise _unavailable(service) from None
                upstream_requests_total.labels(service, plan.subset or "any", "unavailable").inc()
                raise
            try:
                return await self._call(service, instance, method, instance.url + suffix, headers, body)
            except aiohttp.ClientConnectorError:
                # Nothing reached the service: another instance may take it, whatever the method.
                if len(tried) < CONNECT_RETRIES:
                    tried.append(instance.id)
                    continue
                raise _unavailable(service) from None
            except (aiohttp.ClientError, TimeoutError):
                raise _unavailable(service) from None

    async def _call(
        self, service: str, instance: Instance, method: str, url: str, headers: list[Header], body: bytes
    ) -> Response:
        """One attempt on one instance, counted and reported to outlier detection."""
        try:
            # `encoded=True`: the client's path and query reach the service byte for byte.
            async with self.session.request(
                method, yarl.URL(url, encoded=True), headers=headers, data=body or None, allow_redirects=False
            ) as answer:
                content = await answer.read()
                status = answer.status
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream_requests_total.labels(service, instance.version, "unavailable").inc()
            self.mesh.report(service, instance, failed=True)
            error = type(exc).__name__
            log.warning("upstream.unavailable", upstream=service, instance=instance.id, error=error)
            raise
        upstream_requests_total.labels(service, instance.version, str(status)).inc()
        self.mesh.report(service, instance, failed=status >= 500)
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
