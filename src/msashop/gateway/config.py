from pathlib import Path

from msashop.chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
    connect_timeout_seconds: float = 2.0
    upstream_timeout_seconds: float = 15.0
    health_timeout_seconds: float = 2.0
    # The guide's connection-pool limit for calls to the services.
    max_connections: int = 100
    # Where index.html, app.js and style.css live; None: the `msashop.web` package folder.
    web_dir: Path | None = None
