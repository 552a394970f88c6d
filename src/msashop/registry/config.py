from pathlib import Path
from typing import Self

from pydantic import model_validator

from msashop.chassis.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """`MSASHOP_REGISTRY_*`. The port defaults to Consul's, so clients find it where they look."""

    port: int = 8500
    # Where the state lives; default `<data_dir>/registry/state.json`.
    state_file: Path | None = None
    node_name: str = "msashop"
    datacenter: str = "dc1"
    # The address shown as the node's (Consul's agent address); instances carry their own.
    advertise_address: str = "127.0.0.1"
    # Consul runs no check more often than once a second.
    min_check_interval_seconds: float = 1.0
    # How often TTL expiry and DeregisterCriticalServiceAfter are looked at (Consul: 30 s).
    reap_interval_seconds: float = 0.25
    # A blocking query's longest wait (Consul's: 10 minutes) and its default (5 minutes).
    max_wait_seconds: float = 600.0
    default_wait_seconds: float = 300.0

    @model_validator(mode="after")
    def _state_file_in_data_dir(self) -> Self:
        if self.state_file is None:
            self.state_file = self.data_dir / "registry" / "state.json"
        return self
