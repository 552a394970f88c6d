"""The app factory every service is built from: one `Service` wires settings, database, bus,
outbox relay, token verification, health, readiness and metrics around the service's router.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from msashop.chassis import bus_tracing, tracing
from msashop.chassis.auth import TokenVerifier
from msashop.chassis.body_limit import BodyLimitMiddleware
from msashop.chassis.bus.factory import bus_from_url
from msashop.chassis.bus.port import EventBus, Responder
from msashop.chassis.bus_metrics import BACKLOG_INTERVAL, report_backlog
from msashop.chassis.cache_metrics import jwks_cache
from msashop.chassis.client_policy import ClientPolicy
from msashop.chassis.crash_points import CrashPoints
from msashop.chassis.db import Database
from msashop.chassis.dead_letters import router as dead_letter_admin
from msashop.chassis.discovery import Discovery
from msashop.chassis.errors import install_error_handlers
from msashop.chassis.health import HealthChecker, Report, ready_response, standard_checks
from msashop.chassis.http_tracing import TracingMiddleware, instrument_engine
from msashop.chassis.logging import configure_logging
from msashop.chassis.metrics import (
    RequestMiddleware,
    metrics_endpoint,
    outbox_lag_seconds,
    outbox_pending,
)
from msashop.chassis.outbox_relay import OutboxRelay
from msashop.chassis.platform_discovery import PlatformDiscovery
from msashop.chassis.pool_metrics import track_pool
from msashop.chassis.prepared import PreparedHandler, already_handled
from msashop.chassis.revocation import RevocationStore, revocation_store
from msashop.chassis.service_client import ServiceClient
from msashop.chassis.service_tokens import ServiceTokens, client_credentials, read_secret
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.tls import client_context
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope

log = structlog.get_logger()

MessageHandler = Callable[[Envelope, UnitOfWork], Awaitable[None]]
# A plain handler runs inside the unit of work; a PreparedHandler does its slow part before it.
AnyHandler = MessageHandler | PreparedHandler[Any]
Hook = Callable[[], Awaitable[None]]


class Service:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Path | None = None,
        bus: EventBus | None = None,
        store: RevocationStore | None = None,
        uses_bus: bool = True,
        health: Callable[[], Awaitable[JSONResponse]] | None = None,
        downstreams: tuple[str, ...] = (),
    ) -> None:
        self.name = settings.service_name
        self.settings = settings
        tracing.configure_tracing(settings)  # before anything that makes spans (engine, client)
        configure_logging(self.name, settings.version, settings.log_level, instance_id=settings.instance_id)
        self.migrations = migrations
        self.db: Database | None = Database(settings.database_url) if migrations else None
        if self.db is not None:
            track_pool(self.db.engine.sync_engine)  # database_connection_pool_size
            instrument_engine(self.db.engine)  # a span per SQL statement inside a trace
        if bus is None and uses_bus and settings.bus_url:
            bus = bus_from_url(settings.bus_url)
        self.bus = bus
        self.relay = OutboxRelay(self.db, bus) if (self.db and bus) else None
        self.store = store or revocation_store(settings.store_url)
        # `discovery` is the port everything reads (tests may swap in a fake); `registration` is
        # what registers this instance and runs the registry watches.
        self.registration = PlatformDiscovery(settings)
        self.discovery: Discovery = self.registration
        self.client = ServiceClient(
            self.discovery,
            timeout=settings.call_timeout_seconds,
            caller=self.name,
            policy=ClientPolicy.from_settings(settings),
            ssl_context=client_context(settings.tls_files()),  # mTLS on: our certificate, our CA
        )
        # /ready: `downstreams` are the services this one calls synchronously (not critical).
        self.checks: HealthChecker = standard_checks(
            settings.ready_timeout_seconds,
            database=self.db.ping if self.db else None,
            broker=self.bus.ping if self.bus else None,
            store=self.store.ping if settings.store_url else None,
            downstreams={name: partial(self.client.get, name, "/health") for name in downstreams},
        )
        self.crash_points = CrashPoints(settings.crash_file)
        self.verifier = TokenVerifier(self._fetch_jwks, self.store, service=self.name)
        # This service's own tokens for its calls out (None: no client secret configured).
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        secret = read_secret(secret, settings.client_secret_file)
        self.tokens = ServiceTokens(client_credentials(self.client, self.name, secret)) if secret else None
        self.client.tokens = self.tokens
        self.jwks_cache = jwks_cache  # cache_hit_rate{cache_name="jwks"}: the verifier's key lookups
        self._handlers: list[tuple[str, AnyHandler]] = []
        self._responders: list[tuple[str, Responder]] = []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        # A caller-supplied /health answer (the gateway aggregates its upstreams'); None: the default.
        self._health = health
        self._periodic: list[tuple[float, Hook]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.app = self._build_app()
        if self.bus is not None:
            self.app.include_router(dead_letter_admin)  # /admin/dlq: this service's dead letters

    # --- wiring, called from a service's main.py ----------------------------------------------
    def include_router(self, router: APIRouter) -> None:
        self.app.include_router(router)

    def on_message(self, subject: str, handler: AnyHandler) -> None:
        """Consume `subject` in this service's consumer group, effect once (inbox).

        A `PreparedHandler` for a handler that calls out: its slow part runs before the unit of
        work, without holding the write lock (see `msashop.chassis.prepared`).
        """
        self._handlers.append((subject, handler))

    def on_request(self, subject: str, responder: Responder) -> None:
        """Answer RPC requests on `subject` (request/reply over the bus)."""
        self._responders.append((subject, responder))

    def on_startup(self, hook: Hook) -> None:
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self._shutdown.append(hook)

    def every(self, seconds: float, hook: Hook) -> None:
        self._periodic.append((seconds, hook))

    def unit_of_work(self) -> UnitOfWork:
        if self.db is None:
            raise RuntimeError(f"{self.name} has no database")
        return UnitOfWork(self.db, self.relay.wake if self.relay else None)

    # --- runtime ------------------------------------------------------------------------------
    async def _fetch_jwks(self) -> dict[str, Any]:
        # Public keys: asked without a service token (checking one would need these keys).
        result: dict[str, Any] = await self.client.get("user", "/.well-known/jwks.json", service_token=False)
        return result

    def _consumer(self, handler: AnyHandler) -> Callable[[Envelope], Awaitable[None]]:
        async def consume(envelope: Envelope) -> None:
            await self._consume(handler, envelope)

        return consume

    async def _consume(self, handler: AnyHandler, envelope: Envelope) -> None:
        with (
            bus_tracing.consuming(envelope, self.name),  # the trace the event's publisher began
            structlog.contextvars.bound_contextvars(
                event_id=envelope.id, subject=envelope.type, correlation_id=envelope.correlation_id
            ),
        ):
            if not isinstance(handler, PreparedHandler):
                await self._claim_and_apply(envelope, handler)
                return
            # Two phases, so the write lock (SQLite: the whole database) is not held during the
            # slow part. A redelivery is skipped before it; prepare must be safe to repeat, as a
            # crash before the commit runs it again (see msashop.chassis.prepared).
            if self.db is None:
                raise RuntimeError(f"{self.name} has no database")
            if await already_handled(self.db, self.name, envelope):
                log.info("message.duplicate_skipped")
                return
            prepared = await handler.prepare(envelope, self.db.read)
            await self._claim_and_apply(envelope, lambda e, uow: handler.apply(e, uow, prepared))

    async def _claim_and_apply(self, envelope: Envelope, apply: MessageHandler) -> None:
        """Inbox claim, the handler's effects, commit: one unit of work, between two crash points."""
        async with self.unit_of_work() as uow:
            if not await uow.claim(self.name, envelope):
                log.info("message.duplicate_skipped")
                return
            await apply(envelope, uow)
            self.crash_points.reach(f"before_commit:{envelope.type}")
            await uow.commit()
        self.crash_points.reach(f"after_commit:{envelope.type}")

    async def _connect_bus(self) -> None:
        assert self.bus is not None
        for attempt in range(60):
            try:
                await self.bus.connect()
                return
            except Exception as exc:  # noqa: BLE001 - the broker may still be starting
                log.warning("bus.connect_failed", attempt=attempt + 1, error=str(exc))
                await asyncio.sleep(0.5)
        await self.bus.connect()

    async def start(self) -> None:
        if not self.settings.is_development and self.tokens is None:
            raise RuntimeError(
                f"{self.name} has no client secret (client_secret or client_secret_file): "
                "production refuses to call other services without service tokens"
            )
        if self.db is not None and self.migrations is not None:
            await self.db.migrate(self.migrations)
        if self.bus is not None:
            await self._connect_bus()
            for subject, handler in self._handlers:
                await self.bus.subscribe(
                    subject,
                    self.name,
                    self._consumer(handler),
                    max_attempts=self.settings.bus_max_attempts,
                )
            for subject, responder in self._responders:
                await self.bus.respond(subject, bus_tracing.traced_responder(subject, responder))
        if self.relay is not None:
            self.relay.start()
            self.every(5.0, self._report_outbox)
        if self.bus is not None and self._handlers:  # a consumer group: its dead letters and lag
            self.every(BACKLOG_INTERVAL, self._report_backlog)
        for hook in self._startup:
            await hook()
        self._tasks = [asyncio.create_task(self._repeat(s, h)) for s, h in self._periodic]
        await self.registration.start()  # registers once /health answers (after this startup)
        log.info("service.started", port=self.settings.port)

    async def stop(self) -> None:
        await self.registration.stop()  # first: callers stop picking this instance
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for hook in self._shutdown:
            try:
                await hook()
            except Exception:  # one failed hook must not skip the rest of the shutdown
                log.exception("shutdown_hook.failed", hook=getattr(hook, "__name__", "hook"))
        if self.relay is not None:
            await self.relay.stop()
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.close()
        await self.client.close()
        await asyncio.to_thread(tracing.flush)  # this process's last spans
        with contextlib.suppress(Exception):
            await self.store.close()
        if self.db is not None:
            await self.db.dispose()
        log.info("service.stopped")

    async def _repeat(self, seconds: float, hook: Hook) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await hook()
            except asyncio.CancelledError:
                raise
            except Exception:  # a periodic job must survive one bad run
                log.exception("periodic.failed", job=getattr(hook, "__name__", "job"))

    async def _report_outbox(self) -> None:
        if self.relay is not None:
            outbox_pending.set(await self.relay.pending())
            outbox_lag_seconds.set(await self.relay.lag_seconds())

    async def _report_backlog(self) -> None:
        if self.bus is not None:
            await report_backlog(self.bus, self.name)

    async def readiness(self) -> Report:
        return await self.checks.run()

    def _build_app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(title=f"msashop {self.name}", version=self.settings.version, lifespan=lifespan)
        app.state.service = self
        app.state.verifier = self.verifier
        install_error_handlers(app)
        app.add_middleware(BodyLimitMiddleware, max_bytes=self.settings.max_body_bytes)  # 413
        app.add_middleware(RequestMiddleware, record_metrics=self.settings.request_metrics)
        app.add_middleware(TracingMiddleware)  # outermost: the request log line is inside its span

        @app.get("/health", include_in_schema=False)
        async def health() -> JSONResponse:
            if self._health is not None:
                return await self._health()
            # `circuits`: the breaker of every upstream called so far; an open one does not make
            # this service unhealthy (it answers, with fallbacks or 503s, by design).
            return JSONResponse(
                {
                    "status": "ok",
                    "service": self.name,
                    "version": self.settings.version,
                    "circuits": self.client.circuits(),
                }
            )

        @app.get("/ready", include_in_schema=False)
        async def ready() -> JSONResponse:
            return ready_response(self.name, await self.readiness())

        app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
        return app
