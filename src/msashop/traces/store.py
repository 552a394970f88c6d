"""The spans on disk: one SQLite file, bounded in spans and traces, the oldest traces pruned first.

`spans` holds every span; `traces` one summary row per trace (start, end, span count, error,
root, services), recomputed from its spans on every write that touches the trace, so listing
never scans spans and a duplicate span (an exporter's retry) changes nothing.

Synchronous on purpose: one `TraceStore` is one connection, used by one thread (`writer.py`
runs a writer and a reader store on the same file, each on its own thread; WAL lets the reader
read while the writer writes).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msashop.traces.model import SpanRecord

PRUNE_TO = 0.9  # past a bound, prune down to this fraction of it: pruning runs in batches, not per span
_CHUNK = 500  # ids per IN (...) list
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.\-/:]{1,128}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    instance TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    UNIQUE (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error INTEGER NOT NULL,
    root_name TEXT NOT NULL,
    root_service TEXT NOT NULL,
    services TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_ns);
"""

# The summary of each trace named in the temporary table `touched`. The root is the span without
# a parent, else (its root not received yet, or pruned) the earliest span.
_SUMMARISE = """
INSERT OR REPLACE INTO traces
    (trace_id, start_ns, end_ns, span_count, error, root_name, root_service, services)
SELECT
    s.trace_id, MIN(s.start_ns), MAX(s.end_ns), COUNT(*), MAX(s.status = 'error'),
    (SELECT r.name FROM spans r WHERE r.trace_id = s.trace_id
        ORDER BY r.parent_span_id != '', r.start_ns LIMIT 1),
    (SELECT r.service FROM spans r WHERE r.trace_id = s.trace_id
        ORDER BY r.parent_span_id != '', r.start_ns LIMIT 1),
    GROUP_CONCAT(DISTINCT s.service)
FROM spans s WHERE s.trace_id IN (SELECT trace_id FROM touched)
GROUP BY s.trace_id
"""

_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, service, instance, start_ns, end_ns, "
    "status, status_message, attributes, events, links"
)


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    start_ns: int
    end_ns: int
    span_count: int
    error: bool
    root_name: str
    root_service: str
    services: tuple[str, ...]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class TraceFilter:
    service: str | None = None
    min_duration_ns: int = 0
    errors_only: bool = False
    # (key, value): some span of the trace has the attribute `key` equal to `value` (as text).
    attribute: tuple[str, str] | None = None
    limit: int = 50


class InvalidFilter(ValueError):
    pass


class TraceStore:
    def __init__(self, path: Path, *, max_spans: int = 200_000, max_traces: int = 20_000) -> None:
        self.path = path
        self.max_spans = max_spans
        self.max_traces = max_traces
        self.pruned = 0  # traces pruned since opened
        path.parent.mkdir(parents=True, exist_ok=True)
        # Used by one thread at a time (its owner's executor), not necessarily the one that made it.
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # traces are worth less than an fsync per batch
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS touched (trace_id TEXT PRIMARY KEY)")

    def close(self) -> None:
        self.db.close()

    # --- writing ---------------------------------------------------------------------------------
    def insert(self, spans: Sequence[SpanRecord]) -> int:
        """Store `spans` in one transaction (a span already stored is skipped), then prune past
        the bounds. Returns how many spans were new."""
        if not spans:
            return 0
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany(
                f"INSERT OR IGNORE INTO spans ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                [_row(s) for s in spans],
            )
            added = self.db.total_changes - before
            self.db.execute("DELETE FROM touched")
            self.db.executemany(
                "INSERT OR IGNORE INTO touched VALUES (?)", [(t,) for t in {s.trace_id for s in spans}]
            )
            self.db.execute(_SUMMARISE)
        self.prune()
        return added

    def prune(self) -> int:
        """Past `max_spans` or `max_traces`, delete the oldest traces (by start) until 90% of each
        is left. Returns how many traces went."""
        spans, traces = self.counts()
        if spans <= self.max_spans and traces <= self.max_traces:
            return 0
        span_goal, trace_goal = int(self.max_spans * PRUNE_TO), int(self.max_traces * PRUNE_TO)
        doomed: list[str] = []
        oldest = self.db.execute("SELECT trace_id, span_count FROM traces ORDER BY start_ns")
        try:
            for trace_id, count in oldest:
                if spans <= span_goal and traces - len(doomed) <= trace_goal:
                    break
                doomed.append(trace_id)
                spans -= count
        finally:
            oldest.close()  # an unfinished read must not be open when the delete begins
        with self._transaction():
            for chunk in _chunks(doomed):
                marks = ", ".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM spans WHERE trace_id IN ({marks})", chunk)
                self.db.execute(f"DELETE FROM traces WHERE trace_id IN ({marks})", chunk)
        self.pruned += len(doomed)
        return len(doomed)

    def counts(self) -> tuple[int, int]:
        """(spans, traces) stored."""
        row = self.db.execute("SELECT COALESCE(SUM(span_count), 0), COUNT(*) FROM traces").fetchone()
        return int(row[0]), int(row[1])

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    # --- reading ---------------------------------------------------------------------------------
    def list_traces(self, where: TraceFilter) -> list[TraceSummary]:
        """The most recent traces (by start) that match, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if where.service:
            clauses.append("instr(',' || services || ',', ',' || ? || ',') > 0")
            params.append(where.service)
        if where.min_duration_ns > 0:
            clauses.append("end_ns - start_ns >= ?")
            params.append(where.min_duration_ns)
        if where.errors_only:
            clauses.append("error = 1")
        if where.attribute is not None:
            key, value = where.attribute
            if not _ATTRIBUTE_KEY.fullmatch(key):
                raise InvalidFilter(f"attribute name {key!r} is not a valid attribute key")
            clauses.append(
                "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = traces.trace_id "
                "AND CAST(json_extract(s.attributes, ?) AS TEXT) = ?)"
            )
            params += [f'$."{key}"', value]
        sql = "SELECT * FROM traces"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY start_ns DESC LIMIT ?"
        params.append(where.limit)
        return [_summary(row) for row in self.db.execute(sql, params)]

    def spans_of(self, trace_id: str) -> list[SpanRecord]:
        """Every span of the trace, by start time ([] for a trace it does not have)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id", (trace_id,)
        )
        return [_span(row) for row in rows]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error): the connection runs in autocommit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _row(span: SpanRecord) -> tuple[Any, ...]:
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.service,
        span.instance,
        span.start_ns,
        span.end_ns,
        span.status,
        span.status_message,
        _json(span.attributes),
        _json(span.events),
        _json(span.links),
    )


def _span(row: tuple[Any, ...]) -> SpanRecord:
    trace_id, span_id, parent, name, kind, service, instance, start, end, status, message = row[:11]
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        service=service,
        instance=instance,
        start_ns=start,
        end_ns=end,
        status=status,
        status_message=message,
        attributes=json.loads(row[11]),
        events=json.loads(row[12]),
        links=json.loads(row[13]),
    )


def _summary(row: tuple[Any, ...]) -> TraceSummary:
    trace_id, start_ns, end_ns, span_count, error, root_name, root_service, services = row
    return TraceSummary(
        trace_id=trace_id,
        start_ns=start_ns,
        end_ns=end_ns,
        span_count=span_count,
        error=bool(error),
        root_name=root_name,
        root_service=root_service,
        services=tuple(sorted(set(services.split(",")))) if services else (),
    )
