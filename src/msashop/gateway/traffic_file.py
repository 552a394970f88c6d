"""Reading the traffic file (TOML, or JSON by its suffix) and noticing when it changes.

The request path calls `poll()`; it looks at the file at most once per `check_every` seconds
(one `stat`), and parses only when size, mtime or inode moved. A file that does not parse is
logged and ignored: the gateway keeps the rules it had, and never fails a request over it.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import structlog
from pydantic import ValidationError

from msashop.gateway.metrics import traffic_reloads_total
from msashop.gateway.traffic import TrafficConfig

log = structlog.get_logger()

Stamp = tuple[int, int, int]


def load_traffic(path: Path) -> TrafficConfig:
    """Parse and validate the file; ValueError (with the reason) when it is not valid."""
    text = path.read_text()
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        return TrafficConfig.model_validate(raw)
    except (ValidationError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError too
        raise ValueError(f"{path}: {exc}") from None


class TrafficFile:
    """The current traffic config; `poll()` returns a new one when the file changed."""

    def __init__(
        self,
        path: Path | None,
        *,
        check_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.check_every = check_every
        self.clock = clock
        self.config = TrafficConfig()
        self._stamp: Stamp | None = None
        self._next_check = float("-inf")

    def poll(self) -> TrafficConfig | None:
        """The new config if the file changed since the last look, else None (cheap)."""
        now = self.clock()
        if now < self._next_check or self.path is None:
            return None
        self._next_check = now + self.check_every
        stamp = self._read_stamp(self.path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if stamp is None:
            log.info("traffic.defaults", path=str(self.path), reason="no file")
            self.config = TrafficConfig()
            traffic_reloads_total.labels(result="ok").inc()
            return self.config
        try:
            self.config = load_traffic(self.path)
        except (OSError, ValueError) as exc:
            # Keep the rules we had; the next edit of the file gets another try.
            log.error("traffic.invalid", path=str(self.path), error=str(exc))
            traffic_reloads_total.labels(result="error").inc()
            return None
        log.info("traffic.loaded", path=str(self.path), services=sorted(self.config.services))
        traffic_reloads_total.labels(result="ok").inc()
        return self.config

    @staticmethod
    def _read_stamp(path: Path) -> Stamp | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)
