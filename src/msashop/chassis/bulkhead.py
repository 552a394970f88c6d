"""A bulkhead per upstream: at most `limit` calls to it at once; one more is refused at once.

Refusing (503 `bulkhead_full`) rather than queueing keeps a slow upstream from holding every
task of the caller: the calls beyond the limit fail in microseconds and the caller's other
work goes on. The count is per event loop, as the client is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from msashop.chassis.errors import UpstreamUnavailable


class BulkheadFull(UpstreamUnavailable):
    code = "bulkhead_full"


class Bulkhead:
    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise ValueError("a bulkhead lets at least one call through")
        self.name = name
        self.limit = limit
        self.in_use = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `limit` slots for the body; BulkheadFull if none is free."""
        if self.in_use >= self.limit:
            raise BulkheadFull(f"{self.name} has {self.limit} calls under way; try again")
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
