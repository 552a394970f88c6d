"""Readiness: the guide's HealthChecker, done so that it really checks.

Each check is a probe that does a round trip to what the service depends on (the database's
`SELECT 1`, the broker's own ping, Redis `PING`, a declared downstream's `/health`). All run at
once, each within `timeout`; every result carries its response time. A failing *critical* check
(database, broker, the token store) makes the service `down` (HTTP 503: send it no traffic); a
failing non-critical one (a downstream it calls, whose failure it answers with fallbacks or a
clear 503) makes it `degraded` (HTTP 200: it still serves). `/health` stays liveness only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi.responses import JSONResponse

Probe = Callable[[], Awaitable[object]]
CheckStatus = Literal["up", "down"]
Overall = Literal["up", "degraded", "down"]
DEFAULT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    response_time_ms: float
    critical: bool
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "response_time_ms": self.response_time_ms}
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class Report:
    checks: dict[str, CheckResult]

    @property
    def status(self) -> Overall:
        down = [r for r in self.checks.values() if r.status == "down"]
        if any(r.critical for r in down):
            return "down"
        return "degraded" if down else "up"

    @property
    def http_status(self) -> int:
        return 503 if self.status == "down" else 200

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "checks": {k: v.as_json() for k, v in self.checks.items()}}


@dataclass
class HealthChecker:
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    clock: Callable[[], float] = time.perf_counter
    _checks: dict[str, tuple[Probe, bool]] = field(default_factory=dict)

    def add(self, name: str, probe: Probe, *, critical: bool = True) -> None:
        """Check `name` with `probe` (raising or not returning within the timeout means down)."""
        self._checks[name] = (probe, critical)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def run(self) -> Report:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(*self._checks[name]) for name in names))
        return Report(dict(zip(names, results, strict=True)))

    async def _run(self, probe: Probe, critical: bool) -> CheckResult:
        started = self.clock()
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                await probe()
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - a probe reports its failure, it does not raise
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")[:200]
        elapsed_ms = round((self.clock() - started) * 1000, 1)
        return CheckResult("down" if error else "up", elapsed_ms, critical, error)


def ready_response(service: str, report: Report) -> JSONResponse:
    return JSONResponse({**report.as_json(), "service": service}, status_code=report.http_status)


def standard_checks(
    timeout: float,
    *,
    database: Probe | None = None,
    broker: Probe | None = None,
    store: Probe | None = None,
    downstreams: dict[str, Probe] | None = None,
) -> HealthChecker:
    """What every service's /ready checks: its database, broker and token store (critical: it
    cannot do its job without them) and the services it calls synchronously (not critical)."""
    checker = HealthChecker(timeout)
    for name, probe in (("database", database), ("broker", broker), ("store", store)):
        if probe is not None:
            checker.add(name, probe)
    for name, probe in (downstreams or {}).items():
        checker.add(name, probe, critical=False)
    return checker
