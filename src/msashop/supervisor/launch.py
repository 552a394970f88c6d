"""What each child is told: start order, command line, environment, the admin password."""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from msashop.chassis.tls import TlsFiles
from msashop.supervisor import client_secrets
from msashop.supervisor.config import PlatformConfig

SERVICES = ("user", "product", "inventory", "payment", "notification", "shipping", "order", "legacy")
# Started before everything else: every other process registers there and finds the others.
REGISTRY = "registry"
# The embedded trace store (unless traces go to an external collector): started with the
# registry, so every other process's first spans have somewhere to go, and first in that wave,
# so it stops last (children stop in reverse order) and takes everyone's last spans.
TRACES = "traces"
# Components without a database of their own.
NO_DATABASE = ("gateway", REGISTRY, TRACES)
# Health-gated start in dependency order: a wave starts once the one before is ready. Within a
# wave nothing depends on anything else. Consumers come before the services whose start publishes
# (product seeds the catalog): on RabbitMQ a group's queue, and so what it receives, begins with
# its first subscription, while NATS and Kafka keep events for groups that join later.
START_WAVES: tuple[tuple[str, ...], ...] = (
    (TRACES, REGISTRY),
    # legacy (the strangler fig's monolith) keeps a copy of the catalog: it must see the seed.
    ("user", "inventory", "payment", "notification", "shipping", "legacy"),
    ("product", "order"),  # order calls product for prices; product's seed events find queues
    ("gateway",),
)
START_ORDER = tuple(name for wave in START_WAVES for name in wave)
ADMIN_EMAIL = "admin@msashop.local"
ADMIN_MARKER = "admin-created"


def waves(components: Sequence[str]) -> list[tuple[str, ...]]:
    """START_WAVES restricted to `components`, empty waves dropped."""
    picked = [tuple(n for n in wave if n in components) for wave in START_WAVES]
    return [wave for wave in picked if wave]


OWN_PACKAGES = {
    "gateway": "msashop.gateway.main",
    "legacy": "msashop.legacy.main",
    REGISTRY: "msashop.registry.main",
    TRACES: "msashop.traces.main",
}


def module_of(name: str) -> str:
    return OWN_PACKAGES.get(name, f"msashop.services.{name}.main")


def missing_components(names: Sequence[str]) -> list[str]:
    """Components whose main module is not installed (yet)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(module_of(name)) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def select(only: Sequence[str] | None) -> tuple[str, ...]:
    """The components to run, in start order. `only` (tests, debugging) picks a subset."""
    if not only:
        return START_ORDER
    unknown = sorted(set(only) - set(START_ORDER))
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(START_ORDER)}")
    return tuple(name for name in START_ORDER if name in only)


def command(name: str) -> list[str]:
    return [sys.executable, "-m", "msashop", "serve", name]


@dataclass(frozen=True)
class Wiring:
    """Addresses every child shares."""

    data_dir: Path
    ports_file: Path
    bus_url: str
    store_url: str
    env: str  # development, test or production
    registry_url: str = ""  # empty: no registry, the port map only
    discover: tuple[str, ...] = ()  # the components a process may call (watched in the registry)
    tls_dir: Path | None = None  # mTLS on: where the CA and every component's certificate are
    otlp_endpoint: str = ""  # where spans go (the trace store's /v1/traces, or a collector's)
    embedded_traces: bool = False  # the endpoint is our trace store (then, with mTLS, HTTPS)


def child_env(
    name: str,
    port: int,
    wiring: Wiring,
    config: PlatformConfig,
    environ: Mapping[str, str],
    *,
    instance: str | None = None,
) -> dict[str, str]:
    """`MSASHOP_<NAME>_*` for one child (`instance`: which replica). The supervisor owns ports and
    the port map; backends are defaults that a `MSASHOP_<NAME>_*` variable already in the
    environment overrides."""
    prefix = f"MSASHOP_{name.upper()}_"
    env = {
        f"{prefix}PORT": str(port),
        f"{prefix}PORTS_FILE": str(wiring.ports_file),
        f"{prefix}INSTANCE_ID": instance or name,
    }
    defaults = {
        "DATA_DIR": str(wiring.data_dir),
        "BUS_URL": wiring.bus_url,
        "STORE_URL": wiring.store_url,
        "ENV": wiring.env,
        "TLS_DIR": str(wiring.tls_dir) if wiring.tls_dir else "",
    }
    if name != REGISTRY and wiring.registry_url:
        defaults["REGISTRY_URL"] = wiring.registry_url
        defaults["DISCOVER_SERVICES"] = ",".join(wiring.discover)
    if instance and instance in config.versions:
        env[f"{prefix}VERSION"] = config.versions[instance]
    # Its own client secret only, by path (client_secrets.py); the user service: every client's
    # hash, never a secret.
    defaults["CLIENT_SECRET_FILE"] = str(client_secrets.secret_file(wiring.data_dir, name))
    if name == "user":
        defaults["CLIENTS_FILE"] = str(
            client_secrets.secrets_dir(wiring.data_dir) / client_secrets.REGISTRY_FILE
        )
    if name != TRACES:  # the store never traces itself
        env.update(_tracing_env(name, wiring, config, environ))
    if name not in NO_DATABASE and config.database_url:
        defaults["DATABASE_URL"] = config.database_url_for(name)
    for key, value in defaults.items():
        if f"{prefix}{key}" not in environ and value:
            env[f"{prefix}{key}"] = value
    return env


def client_secrets_for(data_dir: Path, components: Sequence[str]) -> None:
    """Every component's client secret (made once, then kept) and the user service's registry."""
    client_secrets.ensure(data_dir, components)


def _tracing_env(
    name: str, wiring: Wiring, config: PlatformConfig, environ: Mapping[str, str]
) -> dict[str, str]:
    """Where a child's spans go and the ratio kept; MSASHOP_OTLP_ENDPOINT and
    MSASHOP_TRACE_SAMPLE_RATIO at `msashop up` win over the config file, a child's own
    `MSASHOP_<NAME>_*` over both."""
    prefix = f"MSASHOP_{name.upper()}_"
    env: dict[str, str] = {}
    if wiring.otlp_endpoint and f"{prefix}OTLP_ENDPOINT" not in environ:
        env[f"{prefix}OTLP_ENDPOINT"] = wiring.otlp_endpoint
    if name == "registry" and f"{prefix}TRACING" not in environ:
        # Its requests are every process's watch long-polls and TTL updates: each would be a
        # trace of its own, burying the shop's traces in the store.
        env[f"{prefix}TRACING"] = "false"
    ratio = config.trace_sample_ratio
    if ratio is not None and not {f"{prefix}TRACE_SAMPLE_RATIO", "MSASHOP_TRACE_SAMPLE_RATIO"} & set(environ):
        env[f"{prefix}TRACE_SAMPLE_RATIO"] = str(ratio)
    if wiring.embedded_traces and wiring.tls_dir is not None:
        # The store takes only our CA's client certificates, like every component with mTLS: the
        # OTLP exporter reads these (OpenTelemetry's variables) for its HTTPS calls.
        tls = TlsFiles.of(wiring.tls_dir, name)
        env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] = str(tls.ca)
        env["OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"] = str(tls.cert)
        env["OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"] = str(tls.key)
    return env


@dataclass(frozen=True)
class AdminPassword:
    value: str | None  # what the user service is given; None: nothing (the admin exists)
    generated: bool


def admin_password(data_dir: Path, environ: Mapping[str, str]) -> AdminPassword:
    """From MSASHOP_ADMIN_PASSWORD; else generated on the first run only (no marker yet)."""
    given = environ.get("MSASHOP_ADMIN_PASSWORD")
    if given:
        return AdminPassword(given, generated=False)
    if (data_dir / ADMIN_MARKER).exists():
        return AdminPassword(None, generated=False)
    return AdminPassword(secrets.token_urlsafe(12), generated=True)
