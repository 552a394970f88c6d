from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from msashop.chassis.settings import ServiceSettings


class TracesSettings(ServiceSettings):
    """`MSASHOP_TRACES_*`. The port defaults to OTLP/HTTP's (4318), where exporters look first."""

    port: int = 4318
    # Every process exports every few seconds: its access log would be mostly that.
    log_level: str = "WARNING"
    # Where the spans live; default `<data_dir>/traces.db`.
    db_file: Path | None = None
    # Bounds: past either, the oldest traces go (by start time) until 90% of it is left.
    max_spans: int = Field(default=200_000, ge=100)
    max_traces: int = Field(default=20_000, ge=10)
    # Writes are batched: one transaction per flush, at most this many spans in it.
    flush_max_spans: int = Field(default=5_000, ge=1)
    # Spans received and not yet written; past it an export is answered 503 (the exporter retries).
    max_queued_spans: int = Field(default=50_000, ge=1)
    # An OTLP request body larger than this is refused (413).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _db_in_data_dir(self) -> Self:
        # The store never traces itself, whatever MSASHOP_TRACING says: each export it received
        # would make spans it then exports to itself, forever.
        self.tracing = False
        self.otlp_endpoint = ""
        if self.db_file is None:
            self.db_file = self.data_dir / "traces.db"
        return self
