"""A refused message comes back later and later, never hammering a failing handler."""

import pytest

from msashop.chassis.bus.port import MAX_REDELIVERY_DELAY, redelivery_delay


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_redelivery_delay_doubles_from_half_a_second_up_to_the_cap(attempt: int, delay: float) -> None:
    assert redelivery_delay(attempt) == delay


def test_redelivery_delay_never_exceeds_the_cap() -> None:
    assert max(redelivery_delay(n) for n in range(1, 1000)) == MAX_REDELIVERY_DELAY
