"""Connection limits per upstream service (Istio's connectionPool, Envoy's circuit-breaker limits).

At most `tcp.maxConnections` requests are in flight to a service (each holds one connection:
HTTP/1.1 without pipelining); up to `http.http1MaxPendingRequests` more wait, first come first
served, for one of them to finish. Anything beyond is refused at once with a 503, so a slow
service costs the gateway a bounded queue, never a pile of waiting requests. A waiting request
is bounded too: the ones ahead of it end within the upstream timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque

from msashop.chassis.errors import AppError


class UpstreamOverloaded(AppError):
    status_code, code = 503, "upstream_overloaded"


class ConnectionLimiter:
    def __init__(self, max_connections: int, max_pending: int) -> None:
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def resize(self, max_connections: int, max_pending: int) -> None:
        """New limits from a reloaded config; waiters move up if there is room now."""
        self.max_connections, self.max_pending = max_connections, max_pending
        while self.active < self.max_connections and self._hand_over():
            self.active += 1

    async def acquire(self) -> None:
        """A slot, at once or after waiting in the pending queue; UpstreamOverloaded when both are full."""
        if self.active < self.max_connections and not self._waiting:
            self.active += 1
            return
        if len(self._waiting) >= self.max_pending:
            raise UpstreamOverloaded("too many requests to this service right now; retry shortly")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter  # `release` passes its slot on by resolving it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # given a slot just as we gave up: pass it on
            elif waiter in self._waiting:  # `_hand_over` may have dropped it already
                self._waiting.remove(waiter)
            raise

    def release(self) -> None:
        if not self._hand_over():
            self.active -= 1

    def _hand_over(self) -> bool:
        """Give the slot to the next live waiter (active count unchanged); False if none."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False
