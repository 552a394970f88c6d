"""The trace store on a real SQLite file: writes, summaries, the waterfall's tree, pruning, filters."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from msashop.traces.model import SpanRecord
from msashop.traces.store import InvalidFilter, TraceFilter, TraceStore
from msashop.traces.waterfall import processes, waterfall

_ids = itertools.count(1)
MS = 1_000_000


def trace_id(n: int) -> str:
    return f"{n:032x}"


def span(
    trace: int,
    *,
    parent: str = "",
    name: str = "GET /x",
    service: str = "order",
    instance: str = "order",
    start_ms: float = 0,
    duration_ms: float = 10,
    status: str = "unset",
    span_id: str | None = None,
    attributes: dict[str, object] | None = None,
) -> SpanRecord:
    base = 1_700_000_000_000 * MS + trace * 10_000 * MS  # later traces start later
    start = base + int(start_ms * MS)
    return SpanRecord(
        trace_id=trace_id(trace),
        span_id=span_id or f"{next(_ids):016x}",
        parent_span_id=parent,
        name=name,
        kind="server",
        service=service,
        instance=instance,
        start_ns=start,
        end_ns=start + int(duration_ms * MS),
        status=status,
        attributes=attributes or {},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    found = TraceStore(tmp_path / "traces.db", max_spans=1_000, max_traces=100)
    yield found
    found.close()


def checkout(trace: int) -> list[SpanRecord]:
    """gateway -> order -> (product, and a publish consumed by inventory), sent out of order."""
    root = span(trace, name="POST /api/orders", service="gateway", instance="gateway", duration_ms=120)
    order = span(trace, parent=root.span_id, name="POST /orders", start_ms=5, duration_ms=100)
    price = span(trace, parent=order.span_id, name="GET /products/{id}", service="product", start_ms=10)
    publish = span(trace, parent=order.span_id, name="publish order.created", start_ms=60, duration_ms=2)
    consume = span(
        trace, parent=publish.span_id, name="consume order.created", service="inventory", start_ms=70
    )
    return [consume, price, root, publish, order]


def test_a_trace_is_summarised_from_its_spans(store: TraceStore) -> None:
    assert store.insert(checkout(1)) == 5

    [summary] = store.list_traces(TraceFilter())
    assert summary.trace_id == trace_id(1)
    assert (summary.root_name, summary.root_service) == ("POST /api/orders", "gateway")
    assert summary.span_count == 5
    assert summary.duration_ns == 120 * MS
    assert summary.services == ("gateway", "inventory", "order", "product")
    assert summary.error is False
    assert store.counts() == (5, 1)


def test_a_span_sent_again_changes_nothing(store: TraceStore) -> None:
    spans = checkout(1)
    store.insert(spans)
    assert store.insert(spans[:2]) == 0
    assert store.counts() == (5, 1)
    assert store.list_traces(TraceFilter())[0].span_count == 5


def test_spans_of_one_trace_arriving_in_several_exports_update_its_summary(store: TraceStore) -> None:
    spans = checkout(1)
    store.insert([spans[0]])  # the consumer's span first: no root yet
    early = store.list_traces(TraceFilter())[0]
    assert (early.root_name, early.span_count) == ("consume order.created", 1)

    store.insert(spans[1:])
    late = store.list_traces(TraceFilter())[0]
    assert (late.root_name, late.span_count, late.duration_ns) == ("POST /api/orders", 5, 120 * MS)


def test_the_waterfall_orders_spans_depth_first_with_their_depth(store: TraceStore) -> None:
    store.insert(checkout(1))
    rows = waterfall(store.spans_of(trace_id(1)))
    assert [(r.span.name, r.depth) for r in rows] == [
        ("POST /api/orders", 0),
        ("POST /orders", 1),
        ("GET /products/{id}", 2),
        ("publish order.created", 2),
        ("consume order.created", 3),
    ]
    assert all(r.parent_found for r in rows)
    by_id = {r.span.span_id: r for r in rows}
    for row in rows[1:]:
        assert by_id[row.span.parent_span_id].depth == row.depth - 1


def test_a_span_whose_parent_is_missing_is_shown_as_a_marked_root(store: TraceStore) -> None:
    root = span(1, name="root")
    orphan = span(1, parent="00000000000000ff", name="orphan", start_ms=5)
    store.insert([root, orphan])
    rows = waterfall(store.spans_of(trace_id(1)))
    assert [(r.span.name, r.depth, r.parent_found) for r in rows] == [
        ("root", 0, True),
        ("orphan", 0, False),
    ]


def test_processes_are_the_distinct_services_and_instances(store: TraceStore) -> None:
    spans = [*checkout(1), span(1, service="product", instance="product-2", start_ms=20)]
    assert processes(spans) == [
        {"service": "gateway", "instance": "gateway", "span_count": 1},
        {"service": "inventory", "instance": "order", "span_count": 1},
        {"service": "order", "instance": "order", "span_count": 2},
        {"service": "product", "instance": "order", "span_count": 1},
        {"service": "product", "instance": "product-2", "span_count": 1},
    ]


def test_the_oldest_traces_go_first_once_the_span_bound_is_passed(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db", max_spans=100, max_traces=1_000)
    for n in range(1, 21):  # 20 traces of 5 spans: exactly the bound
        store.insert(checkout(n))
    assert store.counts() == (100, 20)

    store.insert(checkout(21))  # 105 spans: prune down to 90 (18 traces), the oldest first
    spans, traces = store.counts()
    assert (spans, traces) == (90, 18)
    kept = {t.trace_id for t in store.list_traces(TraceFilter(limit=100))}
    assert kept == {trace_id(n) for n in range(4, 22)}
    assert store.spans_of(trace_id(1)) == []
    assert store.pruned == 3


def test_the_oldest_traces_go_first_once_the_trace_bound_is_passed(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db", max_spans=10_000, max_traces=10)
    for n in range(1, 12):
        store.insert([span(n)])
    assert store.counts() == (9, 9)
    newest = [t.trace_id for t in store.list_traces(TraceFilter(limit=100))]
    assert newest == [trace_id(n) for n in range(11, 2, -1)]


def test_the_store_reopens_with_what_it_had(tmp_path: Path) -> None:
    first = TraceStore(tmp_path / "t.db")
    first.insert(checkout(1))
    first.close()
    again = TraceStore(tmp_path / "t.db")
    assert again.counts() == (5, 1)
    assert len(again.spans_of(trace_id(1))) == 5


def test_listing_is_newest_first_and_limited(store: TraceStore) -> None:
    for n in range(1, 6):
        store.insert(checkout(n))
    found = store.list_traces(TraceFilter(limit=3))
    assert [t.trace_id for t in found] == [trace_id(5), trace_id(4), trace_id(3)]


def test_listing_filters_by_service_duration_errors_and_attribute(store: TraceStore) -> None:
    store.insert(checkout(1))  # 120 ms, touches product
    store.insert([span(2, name="GET /users/me", service="user", duration_ms=3)])
    failed = span(3, name="POST /payments", service="payment", duration_ms=50, status="error")
    store.insert([failed, span(3, parent=failed.span_id, service="payment", attributes={"order.id": 42})])

    def ids(**where: object) -> list[str]:
        return [t.trace_id for t in store.list_traces(TraceFilter(**where))]  # type: ignore[arg-type]

    assert ids(service="product") == [trace_id(1)]
    assert ids(service="prod") == []  # a whole name, not a prefix
    assert ids(min_duration_ns=40 * MS) == [trace_id(3), trace_id(1)]
    assert ids(errors_only=True) == [trace_id(3)]
    assert ids(attribute=("order.id", "42")) == [trace_id(3)]
    assert ids(attribute=("order.id", "41")) == []
    assert ids(service="user", errors_only=True) == []
    assert store.list_traces(TraceFilter(errors_only=True))[0].error is True


def test_an_attribute_name_that_could_escape_the_json_path_is_refused(store: TraceStore) -> None:
    with pytest.raises(InvalidFilter):
        store.list_traces(TraceFilter(attribute=('a"].x', "1")))
