from pathlib import Path
from typing import Self

from limits import parse
from pydantic import AliasChoices, Field, field_validator, model_validator

from msashop.chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = 8000
    connect_timeout_seconds: float = 2.0
    upstream_timeout_seconds: float = 15.0
    # Istio's perTryTimeout for idempotent requests (GET, HEAD, OPTIONS): no answer's headers by
    # then, the try counts as failed and another instance gets the request (proxy.py).
    try_timeout_seconds: float = 2.0
    # How many other instances a request may be sent to after the first (Istio's default: 2).
    retries: int = 2
    # Processes sharing the port (SO_REUSEPORT, serve.py); the gateway uses one core per process.
    workers: int = 1
    # Listen with SO_REUSEPORT even with one worker: for gateway processes started separately.
    reuse_port: bool = False
    health_timeout_seconds: float = 2.0
    # Where index.html, app.js and style.css live; None: the `msashop.web` package folder.
    web_dir: Path | None = None
    # Canary, header routing, limits, outlier detection, faults (README); None: <data-dir>/traffic.toml.
    # A missing file means the defaults; the file is re-read when it changes.
    traffic_file: Path | None = None
    # How often (at most) a request looks at the traffic file's mtime.
    traffic_check_seconds: float = 1.0
    # Origins (scheme://host[:port]) whose pages may call the API with credentials (cors.py), e.g.
    # MSASHOP_GATEWAY_CORS_ORIGINS='["https://shop.example.com"]'. Empty: same-origin only.
    cors_origins: list[str] = []
    # Rate limits on /api/* (rate_limits.py), `limits` notation. `MSASHOP_RATE_LIMITS=off` turns
    # them off (and the user service's login throttle). Per tier, per client (IP or user):
    rate_limits: bool = Field(
        default=True, validation_alias=AliasChoices("MSASHOP_RATE_LIMITS", "rate_limits")
    )
    rate_limit_anonymous: str = "100/hour"
    rate_limit_authenticated: str = "1000/hour"
    rate_limit_premium: str = "10000/hour"  # admins too
    # POST /api/auth/login and /api/auth/register, per client IP, each.
    rate_limit_auth: str = "10/minute"
    # Per service (the route's), per client, as JSON: MSASHOP_GATEWAY_RATE_LIMIT_SERVICES=
    # '{"payment": "60/hour"}'. None by default.
    rate_limit_services: dict[str, str] = Field(default_factory=dict)
    # The burst bucket per client: this many at once, then the refill rate.
    burst_capacity: int = Field(default=100, ge=1)
    burst_refill_per_second: float = Field(default=10.0, gt=0)
    # The counters' keys in the shared store (STORE_URL).
    rate_limit_key_prefix: str = "msashop-gateway"
    # The store unreachable, counts stay in this process; it is tried again this often.
    rate_limit_store_retry_seconds: float = Field(default=5.0, gt=0)

    @property
    def serves_tls(self) -> bool:
        """The edge: its public port stays plain HTTP (TLS in front of it is the deployment's);
        with mTLS on, only its calls to the services use TLS."""
        return False

    @field_validator(
        "rate_limit_anonymous", "rate_limit_authenticated", "rate_limit_premium", "rate_limit_auth"
    )
    @classmethod
    def _a_limit(cls, value: str) -> str:
        parse(value)  # a ValueError names what is wrong
        return value

    @field_validator("rate_limit_services")
    @classmethod
    def _limits(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            parse(text)
        return value

    @model_validator(mode="after")
    def _default_traffic_file(self) -> Self:
        if self.traffic_file is None:
            self.traffic_file = self.data_dir / "traffic.toml"
        return self
