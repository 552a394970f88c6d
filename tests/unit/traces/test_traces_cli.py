"""`msashop traces`: the text waterfall."""

from rich.console import Console

from msashop.supervisor.traces_cli import bar, print_list, print_waterfall


def test_a_bar_sits_at_its_offset_with_its_share_of_the_width() -> None:
    assert bar(0, 100, 100, width=10) == "█" * 10
    assert bar(50, 25, 100, width=10) == "     ██   "
    assert bar(99, 0.001, 100, width=10) == "         █"  # never empty, never past the end
    assert bar(0, 0, 0, width=4) == "█   "


def span(name: str, depth: int, offset: float, duration: float, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "service": "order",
        "depth": depth,
        "offset_ms": offset,
        "duration_ms": duration,
        "status": "unset",
        "parent_found": True,
        **extra,
    }


def test_the_waterfall_indents_by_depth_and_marks_failures_and_orphans() -> None:
    trace = {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "duration_ms": 100.0,
        "span_count": 3,
        "processes": [{"service": "order", "instance": "order-2", "span_count": 3}],
        "spans": [
            span("POST /orders", 0, 0, 100),
            span("SELECT", 1, 10, 20, status="error"),
            span("late", 0, 90, 10, parent_found=False),
        ],
    }
    console = Console(record=True, width=160)
    print_waterfall(trace, console)
    lines = console.export_text().splitlines()
    assert "100.0 ms, 3 spans, order (order-2)" in lines[0]
    rows = [line.strip("\n") for line in lines[2:]]  # after the title and the column names
    assert rows[0].lstrip().startswith("order POST /orders")
    assert "  order SELECT" in rows[1]
    assert "(parent missing)" in rows[2]


def test_an_empty_list_says_so() -> None:
    console = Console(record=True)
    print_list([], console)
    assert "No traces" in console.export_text()
