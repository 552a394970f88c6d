"""`database_connection_pool_size{state}`: the SQLAlchemy connection pool, read at scrape time.

States: `active` (checked out by a request or a consumer: the guide's Grafana query reads this
one), `idle` (open, in the pool) and `overflow` (opened beyond the pool size, PostgreSQL only).
A pool that keeps no count (NullPool, StaticPool) is not reported. Every pool of the process is
summed: a service has one, tests running several services in one process see their total.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, QueuePool

# Engines, not pools: `dispose()` gives an engine a new pool.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def track_pool(engine: Engine) -> None:
    """Report `engine`'s pool in `database_connection_pool_size` for as long as the engine lives."""
    _engines.add(engine)


def pool_states(pool: Pool) -> dict[str, int] | None:
    if not isinstance(pool, QueuePool):  # AsyncAdaptedQueuePool (aiosqlite, asyncpg) is one
        return None
    return {
        "active": pool.checkedout(),
        "idle": pool.checkedin(),
        # Negative while fewer connections than the pool size were ever opened.
        "overflow": max(0, pool.overflow()),
    }


class PoolCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        totals = {"active": 0, "idle": 0, "overflow": 0}
        seen = False
        for engine in list(_engines):
            states = pool_states(engine.pool)
            if states is None:
                continue
            seen = True
            for state, count in states.items():
                totals[state] += count
        family = GaugeMetricFamily(
            "database_connection_pool_size", "Database connections by state", labels=["state"]
        )
        if seen:
            for state, count in totals.items():
                family.add_metric([state], count)
        yield family


REGISTRY.register(PoolCollector())
