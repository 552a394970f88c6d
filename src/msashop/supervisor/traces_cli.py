"""`msashop traces [TRACE_ID]`: recent traces, or one trace as a text waterfall, from the embedded
trace store through the gateway's admin API (`/api/traces`)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from msashop.supervisor.admin_cli import DataDir, Email, Password, run_admin
from msashop.supervisor.dlq import AdminApi, Answer, DlqError
from msashop.supervisor.launch import ADMIN_EMAIL

BAR_WIDTH = 40


def _get(answer: Answer, doing: str) -> Any:
    if answer.status == 503:
        raise DlqError(
            f"cannot {doing}: the trace store is not running (do traces go to an external collector?)"
        )
    if answer.status in (401, 403):
        raise DlqError(f"cannot {doing}: the gateway refused the admin session ({answer.message})")
    if answer.status != 200:
        raise DlqError(f"cannot {doing}: {answer.message}")
    return answer.body


def _started(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def bar(offset_ms: float, duration_ms: float, total_ms: float, width: int = BAR_WIDTH) -> str:
    """The span's place in the trace as text: spaces before it, at least one block for it."""
    total = max(total_ms, 1e-9)
    start = min(width - 1, int(offset_ms / total * width))
    length = max(1, round(duration_ms / total * width))
    length = min(length, width - start)
    return " " * start + "█" * length + " " * (width - start - length)


def print_list(traces: list[dict[str, Any]], console: Console) -> None:
    if not traces:
        console.print(Text("No traces (yet): use the shop, then look again.", style="yellow"))
        return
    table = Table(title=f"Recent traces ({len(traces)})")
    for column in ("started", "trace id", "root"):
        table.add_column(column, overflow="fold")
    table.add_column("duration", justify="right")
    table.add_column("spans", justify="right")
    table.add_column("services", overflow="fold")
    for trace in traces:
        root = Text(f"{trace['root_service']}: {trace['root_name']}")
        if trace["error"]:
            root.append(" error", style="bold red")
        table.add_row(
            _started(trace["start_ns"]),
            trace["trace_id"],
            root,
            _ms(trace["duration_ms"]),
            str(trace["span_count"]),
            ", ".join(trace["services"]),
        )
    console.print(table)


def print_waterfall(trace: dict[str, Any], console: Console) -> None:
    total = trace["duration_ms"]
    console.print(
        Text(f"trace {trace['trace_id']}: {_ms(total)}, {trace['span_count']} spans, ", style="bold")
        + Text(", ".join(f"{p['service']} ({p['instance']})" for p in trace["processes"]))
    )
    table = Table(show_edge=False, box=None, padding=(0, 1))
    table.add_column("span", overflow="ellipsis", no_wrap=True, max_width=70)
    table.add_column("timeline", no_wrap=True)
    table.add_column("duration", justify="right")
    for span in trace["spans"]:
        style = "red" if span["status"] == "error" else ""
        label = Text("  " * span["depth"]) + Text(span["service"], style="bold") + Text(f" {span['name']}")
        if not span["parent_found"]:
            label.append(" (parent missing)", style="yellow")
        table.add_row(
            label,
            Text(bar(span["offset_ms"], span["duration_ms"], total), style=style or "cyan"),
            Text(_ms(span["duration_ms"]), style=style),
        )
    console.print(table)


def traces(
    trace_id: Annotated[str | None, typer.Argument(help="Show this trace as a waterfall.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many recent traces.")] = 20,
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only traces touching it.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces with a failed span.")] = False,
    min_ms: Annotated[float, typer.Option("--min-ms", min=0, help="Only traces at least this long.")] = 0,
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Recent traces from the embedded trace store, or one trace's waterfall."""

    async def work(api: AdminApi) -> Any:
        if trace_id:
            answer = await api.call("GET", f"/api/traces/{quote(trace_id, safe='')}")
            return _get(answer, f"show trace {trace_id}")
        params: dict[str, str] = {"limit": str(limit)}
        if service:
            params["service"] = service
        if errors:
            params["errors"] = "true"
        if min_ms:
            params["min_duration_ms"] = str(min_ms)
        return _get(await api.call("GET", f"/api/traces?{urlencode(params)}"), "list traces")

    found = run_admin(data_dir, admin_email, admin_password, work)
    console = Console(highlight=False, soft_wrap=True)
    if trace_id:
        print_waterfall(found, console)
    else:
        print_list(found["traces"], console)
