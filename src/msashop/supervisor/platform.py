"""`msashop up`: infrastructure first, then each service health-gated in order, then wait for
SIGINT/SIGTERM and stop everything in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import urlsplit

from msashop.chassis import tls
from msashop.supervisor import certificates, infra, launch, prometheus_targets, replicas, tansu
from msashop.supervisor.config import PlatformConfig
from msashop.supervisor.console import PlatformConsole, Summary
from msashop.supervisor.databases import DatabaseSetupFailed, create_missing_databases
from msashop.supervisor.ports import (
    PortInUse,
    base_url,
    ensure_free,
    free_ports,
    remove_port_map,
    write_port_map,
)
from msashop.supervisor.probes import Prober
from msashop.supervisor.process import ChildSpec, Probe, StartupFailed, SupervisedProcess

HEALTH_TIMEOUT = 45.0
EXTERNAL_TIMEOUT = 10.0
SHUTDOWN_BUDGET = 18.0  # the whole stop stays under 20 s even when children hang
T = TypeVar("T")


class PlatformError(Exception):
    """A startup problem worth one clear line, not a traceback."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while the platform was starting."""


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    port: int
    config: PlatformConfig
    only: tuple[str, ...] | None = None
    # Instances per service, `--replicas` over the config file's `[replicas]`.
    replicas: dict[str, int] = field(default_factory=dict)


def _ready_probe(prober: Prober, url: str) -> Probe:
    async def probe() -> bool:
        return await prober.service_ready(url)

    return probe


def _tracing_off(environ: Mapping[str, str]) -> bool:
    """MSASHOP_TRACING=false (0, off, no) at `msashop up`: no process traces, no store is needed."""
    return environ.get("MSASHOP_TRACING", "").strip().lower() in ("0", "false", "off", "no", "f", "n")


class Platform:
    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.components = launch.select(options.only)
        if options.config.registry_url:  # an external registry (a Consul agent): not ours to start
            self.components = tuple(c for c in self.components if c != launch.REGISTRY)
        # Spans go to an external collector when one is named (then the embedded trace store is
        # not started), or nowhere when tracing is off.
        self.otlp_endpoint = os.environ.get("MSASHOP_OTLP_ENDPOINT") or options.config.otlp_endpoint
        if self.otlp_endpoint or _tracing_off(os.environ):
            self.components = tuple(c for c in self.components if c != launch.TRACES)
        self.ports_file = self.data_dir / "ports.json"
        # mTLS: every component but the gateway's public port serves HTTPS to our CA's certificates.
        mtls = certificates.mtls_enabled(options.config.mtls, os.environ)
        self.tls_dir = certificates.tls_dir(self.data_dir) if mtls else None
        self.console = PlatformConsole([options.config.bus_backend, "valkey", *self.components])
        self.children: list[SupervisedProcess] = []
        self._stop = asyncio.Event()
        self._lock: IO[str] | None = None
        self._wrote_port_map = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._request_stop, sig)
        try:
            async with Prober() as prober:
                try:
                    await self._start(prober)
                    await self._stop.wait()
                except Interrupted:
                    pass
                except (PlatformError, StartupFailed) as exc:
                    details = exc.details if isinstance(exc, PlatformError) else exc.tail
                    self.console.error(str(exc), details)
                    return 1
                finally:
                    await self._shutdown()
            return 0
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            self.console.step(f"\n{sig.name} received, stopping msashop...")
        self._stop.set()

    async def _until_stopped(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` unless a stop is requested first (then raise Interrupted)."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise Interrupted
        return task.result()

    # --- start ---------------------------------------------------------------------------------
    async def _start(self, prober: Prober) -> None:
        started = time.monotonic()
        self._prepare_data_dir()
        missing = launch.missing_components(self.components)
        if missing:
            raise PlatformError(f"not installed: {', '.join(missing)} (no {launch.module_of(missing[0])})")
        if "gateway" in self.components:
            try:
                ensure_free(self.options.port, "gateway")
            except PortInUse:
                raise PlatformError(
                    f"port {self.options.port} is already in use; pick another with --port "
                    f'(e.g. msashop up --port {self.options.port + 1}, or make run ARGS="--port '
                    f'{self.options.port + 1}")'
                ) from None
        self._prepare_certificates(prober)
        ports = self._assign_ports()
        urls = {
            name: base_url(ports[name], self._scheme(service))
            for service, names in self._instance_names.items()
            for name in names
        }
        # Before any service starts: they discover each other by it (a list for replicas).
        write_port_map(
            self.ports_file,
            {
                service: urls[names[0]] if len(names) == 1 else [urls[i] for i in names]
                for service, names in self._instance_names.items()
            },
        )
        self._wrote_port_map = True
        prometheus_targets.write_targets(self.ports_file, self.data_dir)  # what Prometheus scrapes

        config = self.options.config
        bus_url = config.bus_url or await self._start_bus(prober, ports)
        store_url = config.store_url or await self._start_valkey(ports["valkey"])
        for name, url in (("broker", config.bus_url), ("store", config.store_url)):
            if url:
                await self._wait_external(name, url)
        if config.uses_postgres:
            await self._create_databases(config)

        wiring = launch.Wiring(
            data_dir=self.data_dir,
            ports_file=self.ports_file,
            bus_url=bus_url,
            store_url=store_url,
            env=os.environ.get("MSASHOP_ENV", "development"),
            registry_url=config.registry_url
            or (urls[launch.REGISTRY] if launch.REGISTRY in self.components else ""),
            discover=tuple(c for c in self.components if c != launch.REGISTRY),
            tls_dir=self.tls_dir,
            otlp_endpoint=self.otlp_endpoint
            or (f"{urls[launch.TRACES]}/v1/traces" if launch.TRACES in self.components else ""),
            embedded_traces=not self.otlp_endpoint and launch.TRACES in self.components,
        )
        # A client secret per service (kept across restarts), for their service tokens.
        launch.client_secrets_for(self.data_dir, self.components)
        admin = launch.admin_password(self.data_dir, os.environ)
        if "user" not in self.components:
            admin = launch.AdminPassword(None, generated=False)
        for wave in launch.waves(self.components):
            specs = []
            for service in wave:
                for name in self._instance_names[service]:
                    env = launch.child_env(service, ports[name], wiring, config, os.environ, instance=name)
                    if service == "user" and admin.value:
                        env["MSASHOP_USER_ADMIN_PASSWORD"] = admin.value
                    url = urls[name]
                    specs.append(
                        ChildSpec(name, launch.command(service), _ready_probe(prober, url), env, url)
                    )
            await self._start_wave(specs)
            if "user" in wave and admin.generated:
                (self.data_dir / launch.ADMIN_MARKER).write_text(launch.ADMIN_EMAIL + "\n")

        self.console.summary(
            Summary(
                gateway_url=base_url(self.options.port),
                data_dir=str(self.data_dir),
                admin_email=launch.ADMIN_EMAIL,
                admin_password=admin.value,
                started_in=time.monotonic() - started,
                config_source=str(config.source) if config.source else None,
            )
        )

    def _prepare_data_dir(self) -> None:
        for sub in ("db", "logs", "nats", "valkey"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        # One supervisor per data dir: two would share databases and overwrite the port map.
        self._lock = (self.data_dir / "supervisor.lock").open("a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise PlatformError(
                f"another msashop up is already using {self.data_dir}; stop it or pick another --data-dir"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    def _prepare_certificates(self, prober: Prober) -> None:
        """mTLS on: the CA and a current certificate per component; the probes show the
        supervisor's own (a service refuses a client without one)."""
        if self.tls_dir is None:
            return
        try:
            issued = certificates.ensure(self.tls_dir, self.components)
        except certificates.CertificateError as exc:
            raise PlatformError(str(exc)) from None
        if issued:
            self.console.step(f"Issued TLS certificates ({self.tls_dir}): {', '.join(issued)}")
        prober.ssl_context = tls.client_context(tls.TlsFiles.of(self.tls_dir, "supervisor"))

    def _scheme(self, service: str) -> str:
        """The gateway's public port stays plain HTTP (the edge); with mTLS the rest is HTTPS."""
        return "https" if self.tls_dir is not None and service != "gateway" else "http"

    @property
    def _instance_names(self) -> dict[str, list[str]]:
        return {
            service: replicas.instance_names(service, self.options.replicas.get(service, 1))
            for service in self.components
        }

    @property
    def instances(self) -> list[str]:
        return [name for names in self._instance_names.values() for name in names]

    def _assign_ports(self) -> dict[str, int]:
        names = [n for n in self.instances if n != "gateway"] + ["nats", "nats-monitor", "kafka", "valkey"]
        ports = dict(zip(names, free_ports(len(names), exclude={self.options.port}), strict=True))
        ports["gateway"] = self.options.port
        return ports

    async def _start_wave(self, specs: list[ChildSpec]) -> None:
        """Start every child of a wave at once, then wait until each is ready."""
        started = [await self._spawn(spec) for spec in specs]

        async def healthy(child: SupervisedProcess) -> None:
            seconds = await child.wait_healthy(HEALTH_TIMEOUT)
            self.console.healthy(child.spec.name, child.spec.url, seconds)

        await self._until_stopped(asyncio.gather(*(healthy(c) for c in started)))

    async def _spawn(self, spec: ChildSpec) -> SupervisedProcess:
        child = SupervisedProcess(spec, self.console, self.data_dir / "logs")
        try:
            await child.start()
        except OSError as exc:
            raise PlatformError(f"cannot start {spec.name}: {exc}") from None
        self.children.append(child)
        return child

    async def _start_bus(self, prober: Prober, ports: dict[str, int]) -> str:
        """The embedded broker of the configured backend (config.py allows only nats and kafka)."""
        try:
            if self.options.config.bus_backend == "kafka":
                spec = tansu.tansu_spec(ports["kafka"], prober)
            else:
                spec = infra.nats_spec(ports["nats"], ports["nats-monitor"], self.data_dir / "nats", prober)
        except infra.MissingBinary as exc:
            raise PlatformError(str(exc)) from None
        await self._start_wave([spec])
        return spec.url

    async def _start_valkey(self, port: int) -> str:
        try:
            spec = infra.valkey_spec(port, self.data_dir / "valkey")
        except infra.MissingBinary as exc:
            raise PlatformError(str(exc)) from None
        await self._start_wave([spec])
        return spec.url

    async def _wait_external(self, what: str, url: str) -> None:
        deadline = time.monotonic() + EXTERNAL_TIMEOUT
        while not await self._until_stopped(infra.reachable(url)):
            if time.monotonic() > deadline:
                shown = urlsplit(url)._replace(netloc=urlsplit(url).netloc.rpartition("@")[2]).geturl()
                raise PlatformError(f"cannot reach the {what} at {shown} (from the config file)")
            await self._until_stopped(asyncio.sleep(0.5))

    async def _create_databases(self, config: PlatformConfig) -> None:
        urls = [config.database_url_for(n) for n in self.components if n not in launch.NO_DATABASE]
        try:
            created = await self._until_stopped(create_missing_databases(urls))
        except DatabaseSetupFailed as exc:
            raise PlatformError(str(exc)) from None
        if created:
            self.console.step(f"Created PostgreSQL database(s): {', '.join(created)}")

    # --- stop ----------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        """Gateway first, then services in reverse start order, then valkey and nats."""
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        for child in reversed(self.children):
            began = time.monotonic()
            await child.stop(deadline)
            self.console.stopped(child.name, time.monotonic() - began)
        self.children.clear()
        if self._wrote_port_map:  # never another supervisor's
            remove_port_map(self.ports_file)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
