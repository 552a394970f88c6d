"""A trace as a waterfall: its spans depth first (children by start time), each with its depth.

A span whose parent is not in the trace (not received yet, sampled out, or pruned) is drawn as a
root of its own and marked, rather than hidden.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from msashop.traces.model import SpanRecord


@dataclass(frozen=True)
class Row:
    span: SpanRecord
    depth: int
    # False: the span names a parent the trace does not hold.
    parent_found: bool


def waterfall(spans: Sequence[SpanRecord]) -> list[Row]:
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
    ids = {s.span_id for s in ordered}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    roots: list[SpanRecord] = []
    for span in ordered:
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children[span.parent_span_id].append(span)
        else:
            roots.append(span)
    rows: list[Row] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:  # a span id sent twice under different parents: drawn once
            continue
        seen.add(span.span_id)
        rows.append(Row(span, depth, parent_found=depth > 0 or not span.parent_span_id))
        stack += [(child, depth + 1) for child in reversed(children[span.span_id])]
    # Spans only reachable through a cycle of parent ids (a broken exporter): still shown.
    rows += [Row(s, 0, parent_found=False) for s in ordered if s.span_id not in seen]
    return rows


def processes(spans: Sequence[SpanRecord]) -> list[dict[str, object]]:
    """The distinct (service, instance) pairs, with their span counts."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for span in spans:
        counts[(span.service, span.instance)] += 1
    return [
        {"service": service, "instance": instance, "span_count": count}
        for (service, instance), count in sorted(counts.items())
    ]
