"""Forwarding one request to an instance of a service, with Istio's retry policy, answer streamed.

Retries go to another instance (never the one that just failed), at most `retries` of them:
- a connection that could not be made reached nobody: any method is sent again;
- an idempotent request (GET, HEAD, OPTIONS) is also sent again when its try timed out
  (`try_timeout_seconds` to the answer's headers), the connection broke, or the answer is
  502/503/504 (Istio's `retryOn: connect-failure,reset,5xx` with `perTryTimeout`);
- anything else is answered as it is: a POST the service may have seen is never sent twice.
"""

from __future__ import annotations

import asyncio

import structlog
from starlette.types import Send

from msashop.chassis import tracing
from msashop.chassis.discovery import Discovery, Instance
from msashop.chassis.errors import UpstreamUnavailable
from msashop.chassis.http_tracing import end_client_span, start_client_span
from msashop.chassis.tls import client_context
from msashop.gateway.config import GatewaySettings
from msashop.gateway.headers import RawHeader, downstream_raw
from msashop.gateway.http1 import Client, ConnectFailed, Connection, UpstreamError, request_head
from msashop.gateway.limits import UpstreamOverloaded
from msashop.gateway.mesh import Mesh
from msashop.gateway.metrics import limit_rejections_total, upstream_requests
from msashop.gateway.rules import Plan

log = structlog.get_logger()

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Methods whose request always carries a length, 0 included (RFC 9110 8.6).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
NO_BODY_STATUSES = frozenset({204, 304})
READY_BODY_LIMIT = 64 * 1024  # a /ready report is a few hundred bytes


def _unavailable(service: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{service} service is unavailable", details={"service": service})


class Upstreams:
    """The keep-alive connections to every instance, and the forwarding over them."""

    def __init__(self, settings: GatewaySettings, mesh: Mesh) -> None:
        self.settings = settings
        self.mesh = mesh
        self._client: Client | None = None

    async def open(self) -> None:
        self._client = Client(
            connect_timeout=self.settings.connect_timeout_seconds,
            tls=client_context(self.settings.tls_files()),  # mTLS on: the gateway's certificate
        )

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("gateway upstream pool used before startup")
        return self._client

    async def forward(
        self,
        discovery: Discovery,
        plan: Plan,
        method: str,
        query: bytes,
        headers: list[RawHeader],
        body: bytes,
        send: Send,
    ) -> None:
        """Send the request to an instance of `plan.service`; its answer, errors included, unchanged."""
        limiter = self.mesh.upstream(plan.service).limiter
        try:
            await limiter.acquire()
        except UpstreamOverloaded as exc:
            limit_rejections_total.labels(service=plan.service).inc()
            exc.details = {"service": plan.service}
            raise
        # One CLIENT span for the forward, retries included; the service's span is its child.
        span = start_client_span(method, plan.service)
        if (traceparent := tracing.traceparent_of(span.get_span_context())) is not None:
            headers.append((b"traceparent", traceparent.encode()))
        status = 0
        try:
            connection = await self._exchange(discovery, plan, method, query, headers, body)
            status = connection.status
            await self._relay(connection, plan.service, method, send)
        finally:
            end_client_span(span, status)
            limiter.release()

    async def _exchange(
        self,
        discovery: Discovery,
        plan: Plan,
        method: str,
        query: bytes,
        headers: list[RawHeader],
        body: bytes,
    ) -> Connection:
        """The connection holding the answer's status and headers, after any retries."""
        service, settings = plan.service, self.settings
        idempotent = method in IDEMPOTENT
        target = plan.path.encode("latin-1") + (b"?" + query if query else b"")
        length = len(body) if body or method in BODY_METHODS else None
        tried: list[str] = []
        try:
            instance = self.mesh.pick(discovery, service, plan.subset)
        except UpstreamUnavailable:
            upstream_requests(service, plan.subset or "any", "unavailable").inc()
            raise
        while True:
            timeout = settings.upstream_timeout_seconds
            if idempotent and self._can_retry(discovery, plan, tried, instance):
                # The per-try timeout is there to move on to another instance; with none left it
                # would only turn a slow answer (a busy service) into an error.
                timeout = min(timeout, settings.try_timeout_seconds)
            origin = self.client.origin(instance.url)
            head = request_head(method, origin.base_path + target, origin.host_header, headers, length)
            try:
                connection = await origin.connection()
                try:
                    await connection.exchange(head, body, is_head=method == "HEAD", timeout=timeout)
                except BaseException:
                    connection.release()  # closes it: the exchange did not end cleanly
                    raise
            except UpstreamError as exc:
                self._failed(service, instance, exc)
                # Nothing reached the service, or it may safely see the request again.
                retry = isinstance(exc, ConnectFailed) or idempotent
                following = self._next(discovery, plan, tried, instance) if retry else None
                if following is None:
                    raise _unavailable(service) from None
                instance = following
                continue
            status = connection.status
            upstream_requests(service, instance.version, str(status)).inc()
            self.mesh.report(service, instance, failed=status >= 500)
            if idempotent and status in RETRY_STATUSES:
                following = self._next(discovery, plan, tried, instance)
                if following is not None:
                    connection.release()
                    instance = following
                    continue
            return connection

    def _can_retry(self, discovery: Discovery, plan: Plan, tried: list[str], current: Instance) -> bool:
        """Whether a failed try could go on to another instance (retries left, someone left)."""
        if len(tried) >= self.settings.retries:
            return False
        spent = {*tried, current.id}
        return any(
            i.id not in spent and (plan.subset is None or i.version == plan.subset)
            for i in discovery.instances(plan.service)
        )

    def _next(self, discovery: Discovery, plan: Plan, tried: list[str], failed: Instance) -> Instance | None:
        """Another instance for a retry; None when the retries are used up or nobody is left."""
        tried.append(failed.id)
        if len(tried) > self.settings.retries:
            return None
        try:
            return self.mesh.pick(discovery, plan.service, plan.subset, tried)
        except UpstreamUnavailable:
            return None

    def _failed(self, service: str, instance: Instance, error: UpstreamError) -> None:
        """A try without an answer: counted, and a strike for outlier detection."""
        upstream_requests(service, instance.version, "unavailable").inc()
        self.mesh.report(service, instance, failed=True)
        log.warning(
            "upstream.unavailable", upstream=service, instance=instance.id, error=type(error).__name__
        )

    async def _relay(self, connection: Connection, service: str, method: str, send: Send) -> None:
        """The service's answer to the client: at once when it is all in, else as it arrives."""
        try:
            status = connection.status
            headers = downstream_raw(connection.headers)
            body = connection.body_if_complete()
            length = (
                _length(connection.headers) if method == "HEAD" or body is None else str(len(body)).encode()
            )
            if length is not None and status not in NO_BODY_STATUSES:
                headers.append((b"content-length", length))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if body is not None:
                await send({"type": "http.response.body", "body": body})
                return
            timeout = self.settings.upstream_timeout_seconds
            try:
                while chunk := await connection.read(timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:
                # Too late for an error answer: the client's connection is closed mid-body (uvicorn
                # does that when the app returns without finishing), so it cannot mistake the
                # part for the whole.
                log.warning("upstream.answer_cut", upstream=service, error=type(exc).__name__)
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            connection.release()

    async def ready(self, url: str) -> tuple[int, bytes]:
        """GET `url`/ready: its status and body; 0 and the reason when nothing answered in time."""
        origin = self.client.origin(url)
        head = request_head("GET", origin.base_path + b"/ready", origin.host_header, [], None)
        connection: Connection | None = None
        body = bytearray()
        try:
            async with asyncio.timeout(self.settings.health_timeout_seconds):
                connection = await origin.connection()
                await connection.exchange(
                    head, b"", is_head=False, timeout=self.settings.health_timeout_seconds
                )
                # Read to the end, so the connection can be used again; keep what a report needs.
                while chunk := await connection.read(self.settings.health_timeout_seconds):
                    if len(body) < READY_BODY_LIMIT:
                        body += chunk
        except (UpstreamError, TimeoutError) as exc:
            return 0, type(exc).__name__.encode()
        finally:
            if connection is not None:
                connection.release()
        assert connection is not None
        return connection.status, bytes(body)


def _length(headers: list[RawHeader]) -> bytes | None:
    """The service's Content-Length, unless the body is chunked (then the server frames it)."""
    length = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"transfer-encoding":
            return None
        if lname == b"content-length":
            length = value.strip()
    return length
