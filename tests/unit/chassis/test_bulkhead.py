"""The bulkhead: at most `limit` calls at once, the next refused at once."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from msashop.chassis.bulkhead import Bulkhead, BulkheadFull


def test_it_refuses_the_call_beyond_its_limit_at_once() -> None:
    bulkhead = Bulkhead("product", 3)
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(bulkhead.slot())
        started = time.perf_counter()
        with pytest.raises(BulkheadFull) as raised, bulkhead.slot():
            pass
        assert time.perf_counter() - started < 0.05  # refused, not queued
        assert bulkhead.in_use == 3
    assert raised.value.status_code == 503 and raised.value.code == "bulkhead_full"


def test_a_slot_is_free_again_when_its_call_ends_even_by_an_error() -> None:
    bulkhead = Bulkhead("product", 1)
    with pytest.raises(RuntimeError), bulkhead.slot():
        raise RuntimeError("the call failed")
    assert bulkhead.in_use == 0
    with bulkhead.slot():
        assert bulkhead.in_use == 1


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Bulkhead("product", 0)
