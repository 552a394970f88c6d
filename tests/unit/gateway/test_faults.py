"""Fault decisions: delay then abort, each drawn at its own percentage."""

import random

from msashop.gateway.faults import NO_FAULT, FaultAction, decide
from msashop.gateway.traffic import Fault


def _fault(**raw: object) -> Fault:
    return Fault.model_validate(raw)


def test_no_fault_is_no_action() -> None:
    assert decide((), random.Random(1)) is NO_FAULT


def test_full_percentages_always_apply() -> None:
    fault = _fault(delay={"fixedDelay": "250ms"}, abort={"httpStatus": 503})
    assert decide((fault,), random.Random(1)) == FaultAction(delay=0.25, abort=503)


def test_half_the_requests_are_aborted_at_fifty_percent() -> None:
    fault, rng = _fault(abort={"httpStatus": 500, "percentage": {"value": 50}}), random.Random(9)
    aborted = sum(decide((fault,), rng).abort == 500 for _ in range(2000))
    assert 900 <= aborted <= 1100


def test_zero_percent_never_applies() -> None:
    never = {"value": 0}
    fault = _fault(
        delay={"fixedDelay": "1s", "percentage": never}, abort={"httpStatus": 500, "percentage": never}
    )
    rng = random.Random(2)
    assert all(decide((fault,), rng) == FaultAction() for _ in range(200))


def test_delays_of_two_matching_rules_add_up_and_the_first_abort_wins() -> None:
    edge = _fault(delay={"fixedDelay": "1s"}, abort={"httpStatus": 502})
    service = _fault(delay={"fixedDelay": "2s"}, abort={"httpStatus": 503})
    assert decide((edge, service), random.Random(1)) == FaultAction(delay=3.0, abort=502)
