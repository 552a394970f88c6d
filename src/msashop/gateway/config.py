from pathlib import Path
from typing import Self

from pydantic import model_validator

from msashop.chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
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

    @property
    def serves_tls(self) -> bool:
        """The edge: its public port stays plain HTTP (TLS in front of it is the deployment's);
        with mTLS on, only its calls to the services use TLS."""
        return False

    @model_validator(mode="after")
    def _default_traffic_file(self) -> Self:
        if self.traffic_file is None:
            self.traffic_file = self.data_dir / "traffic.toml"
        return self
