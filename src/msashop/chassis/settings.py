"""Per-service settings from the environment (`MSASHOP_<SERVICE>_<SETTING>`), checked for production."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from msashop.chassis.tls import TlsFiles

Environment = Literal["development", "test", "production"]
# Set once for every process as `MSASHOP_<SETTING>`; `MSASHOP_<SERVICE>_<SETTING>` still wins.
PLATFORM_WIDE = ("env", "tracing", "otlp_endpoint", "trace_sample_ratio", "request_metrics")


class ServiceSettings(BaseSettings):
    """Settings every service has. A service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    # This replica's name (`product-2`); the service's name when it runs once.
    instance_id: str = ""
    env: Environment = "development"
    version: str = "v1"
    host: str = "127.0.0.1"
    port: int = 0
    data_dir: Path = Path(".msashop")
    database_url: str = ""
    bus_url: str = ""
    store_url: str = ""
    ports_file: Path | None = None
    # The registry (Consul HTTP API: ours or a Consul agent); empty: the port map only.
    registry_url: str = ""
    # Comma-separated services this process watches in the registry (the ones it may call).
    discover_services: str = ""
    # Kubernetes: one DNS name per service, e.g. "http://{service}.shop.svc:8000" (no registry,
    # no port map; the platform balances and checks health).
    dns_url_template: str = ""
    log_level: str = "INFO"
    # Calls to other services (chassis/service_client.py): a timeout per attempt, then retries of
    # idempotent calls, a circuit breaker, a bulkhead and passive ejection per upstream.
    call_timeout_seconds: float = Field(default=5.0, gt=0)
    call_max_attempts: int = Field(default=3, ge=1)  # the first included; 1: no retry
    call_retry_initial_wait_seconds: float = Field(default=0.1, ge=0)  # doubles per retry, jittered
    call_retry_max_wait_seconds: float = Field(default=10.0, ge=0)  # Retry-After included
    breaker_window_calls: int = Field(default=20, ge=1)  # the failure rate is over the last N calls
    breaker_min_calls: int = Field(default=10, ge=1)  # calls seen before the rate can open it
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_reset_seconds: float = Field(default=30.0, ge=0)  # OPEN this long, then HALF_OPEN
    breaker_trial_calls: int = Field(default=3, ge=1)  # HALF_OPEN successes that close it
    # Per upstream; beyond: 503. As many as the gateway lets through to one service (its pool).
    bulkhead_max_concurrent_calls: int = Field(default=100, ge=1)
    ejection_base_seconds: float = Field(default=10.0, ge=0)  # a failing instance is skipped...
    ejection_max_seconds: float = Field(default=120.0, ge=0)  # ...doubling on repeat, up to this
    # Deliveries of one message to a handler before it goes to the dead-letter queue.
    bus_max_attempts: int = 5
    # Each /ready check (database, broker, store, downstreams) answers within this or is down.
    ready_timeout_seconds: float = Field(default=2.0, gt=0)
    # Request bodies past this are refused with 413 (chassis/body_limit.py); the gateway's too.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Tracing (chassis/tracing.py): off, a no-op tracer. Spans go over OTLP/HTTP to the endpoint
    # (a base URL or its /v1/traces); none, they are recorded (ids for the logs), not exported.
    # The ratio of traces kept (parent-based; failed spans are kept whatever it says); unset:
    # all of them, a tenth in production.
    tracing: bool = True
    otlp_endpoint: str = ""
    trace_sample_ratio: float | None = Field(default=None, ge=0, le=1)
    # The per-request histogram and counter (http_request_duration_seconds, http_requests_total);
    # `MSASHOP_REQUEST_METRICS=off` only to measure what they cost (bench/edge_cost.py).
    request_metrics: bool = True
    # Tests only, refused in production: a file naming crash points (chassis/crash_points.py).
    crash_file: Path | None = None
    # This service's client secret for service tokens (client credentials at the user service,
    # chassis/service_tokens.py): the text, or a file holding it (the supervisor writes one per
    # service). None of them: calls go out without a service token; production refuses to start.
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    # Mutual TLS inside the platform (chassis/tls.py): the directory holding ca.pem and this
    # component's <service_name>.pem/.key, which the supervisor writes when mTLS is on. Set: this
    # process serves HTTPS to our CA's certificates only and calls the others over it. None: HTTP.
    tls_dir: Path | None = None

    @classmethod
    def load(cls, service_name: str, **overrides: Any) -> Self:
        """Read `MSASHOP_<NAME>_*`; `MSASHOP_ENV` sets the environment for every service."""
        prefix = f"MSASHOP_{service_name.upper()}_"
        for name in PLATFORM_WIDE:
            variable = name.upper()
            if name not in overrides and f"{prefix}{variable}" not in os.environ:
                if f"MSASHOP_{variable}" in os.environ:
                    overrides[name] = os.environ[f"MSASHOP_{variable}"]
        return cls(_env_prefix=prefix, service_name=service_name, **overrides)  # type: ignore[call-arg]

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'db' / f'{self.service_name}.sqlite'}"
        if self.ports_file is None:
            self.ports_file = self.data_dir / "ports.json"
        return self

    @model_validator(mode="after")
    def _refuse_development_keys_in_production(self) -> Self:
        if self.env == "production" and self.crash_file is not None:
            raise ValueError("crash_file kills the service on purpose; production refuses it")
        if self.env == "production":
            for name, value in self.development_keys().items():
                if value:
                    raise ValueError(f"{name} uses a development key; set a real one for production")
        return self

    @model_validator(mode="after")
    def _tls_files_exist(self) -> Self:
        tls = self.tls_files()
        if tls is not None and (missing := tls.missing()):
            shown = ", ".join(str(path) for path in missing)
            raise ValueError(f"mTLS is on but {shown} is missing (msashop certs rotate {self.service_name})")
        return self

    def development_keys(self) -> dict[str, bool]:
        """Which secrets are development defaults (True). Services that hold secrets add theirs."""
        return {}

    @property
    def sample_ratio(self) -> float:
        if self.trace_sample_ratio is not None:
            return self.trace_sample_ratio
        return 0.1 if self.env == "production" else 1.0

    @property
    def is_development(self) -> bool:
        return self.env != "production"

    def tls_files(self) -> TlsFiles | None:
        """This component's certificate, key and the CA (None: mTLS off)."""
        return TlsFiles.of(self.tls_dir, self.service_name) if self.tls_dir is not None else None

    @property
    def serves_tls(self) -> bool:
        """Whether this process's own port speaks TLS: with mTLS on, except at the edge (the gateway)."""
        return self.tls_dir is not None
