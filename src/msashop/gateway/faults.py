"""Istio-style fault injection: delay and/or abort a share of a route's requests before proxying.

Like Envoy's fault filter, the delay comes first and then the abort; each draws its own
percentage. An abort is answered by the gateway in the chassis error shape, and the request
never reaches the service.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from msashop.chassis.errors import error_body
from msashop.gateway.traffic import Fault


@dataclass(frozen=True, slots=True)
class FaultAction:
    delay: float = 0.0  # seconds to wait before going on
    abort: int | None = None  # the status to answer with instead of proxying


NO_FAULT = FaultAction()


def _drawn(percentage: float, rng: random.Random) -> bool:
    return percentage >= 100 or (percentage > 0 and rng.random() * 100 < percentage)


def decide(faults: Sequence[Fault], rng: random.Random) -> FaultAction:
    """What the matched rules' faults do to this one request (delays add up; first abort wins)."""
    if not faults:
        return NO_FAULT
    delay, abort = 0.0, None
    for fault in faults:
        if fault.delay and _drawn(fault.delay.percentage.value, rng):
            delay += fault.delay.fixed_delay
        if abort is None and fault.abort and _drawn(fault.abort.percentage.value, rng):
            abort = fault.abort.http_status
    return FaultAction(delay, abort)


def abort_response(status: int, service: str) -> JSONResponse:
    body = error_body("fault_injected", "fault injected by the gateway's traffic rules", {"service": service})
    return JSONResponse(body, status_code=status)
