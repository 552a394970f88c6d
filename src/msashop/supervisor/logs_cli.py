"""`msashop logs [SERVICE] [--id ID] [--follow]`: the platform's JSON logs, across services.

Reads `<data-dir>/logs/<name>.log` (and rotated `.log.1` ...), merges the lines of every
instance by timestamp, and keeps those that mention an id (a request id, an event or
correlation id, an order id, or a trace id once traces carry one) in any of their fields.
`--follow` keeps printing new lines as the services write them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from msashop.supervisor.admin_cli import DataDir

SHOWN_APART = frozenset({"timestamp", "event", "level", "service", "version"})
ID_FIELDS = ("trace_id", "request_id", "correlation_id", "event_id", "causation_id", "order_id")


def log_files(logs: Path, service: str | None) -> list[Path]:
    """The current log of each instance of `service` (all when None): `product`, `product-2`, ..."""
    found = sorted(p for p in logs.glob("*.log") if service is None or _instance_of(p.stem, service))
    return found


def _instance_of(name: str, service: str) -> bool:
    head, _, tail = name.rpartition("-")
    return name == service or (head == service and tail.isdigit())


def parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def matches(record: dict[str, Any], wanted: str | None) -> bool:
    if wanted is None:
        return True
    return any(str(record.get(field, "")) == wanted for field in ID_FIELDS)


def read(files: list[Path], wanted: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(timestamp, instance, record) of every matching JSON line, oldest first."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for path in files:
        rotated = sorted(path.parent.glob(path.name + ".*"), reverse=True)  # .3 (oldest) first
        for part in [*rotated, path]:
            for line in part.read_text(errors="replace").splitlines():
                record = parse(line)
                if record is not None and matches(record, wanted):
                    found.append((str(record.get("timestamp", "")), path.stem, record))
    found.sort(key=lambda row: row[0])
    return found


def show(instance: str, record: dict[str, Any]) -> str:
    fields = " ".join(f"{k}={v}" for k, v in record.items() if k not in SHOWN_APART)
    when, level, event = record.get("timestamp", ""), record.get("level", ""), record.get("event", "")
    return f"{when} {instance:<14} {level:<7} {event} {fields}"


def follow(files: list[Path], wanted: str | None, poll: float = 0.5) -> Iterator[str]:
    """New matching lines as they are written (from the end of each file now)."""
    offsets = {path: path.stat().st_size for path in files}
    while True:
        for path in files:
            size = path.stat().st_size if path.exists() else 0
            if size < offsets[path]:  # rotated: start the new file from its beginning
                offsets[path] = 0
            if size == offsets[path]:
                continue
            with path.open(errors="replace") as handle:
                handle.seek(offsets[path])
                chunk = handle.read()
                offsets[path] = handle.tell()
            for line in chunk.splitlines():
                record = parse(line)
                if record is not None and matches(record, wanted):
                    yield show(path.stem, record)
        time.sleep(poll)


def logs(
    service: Annotated[str | None, typer.Argument(help="Only this service (all its instances).")] = None,
    id_: Annotated[
        str | None,
        typer.Option("--id", "--trace", help="Only lines carrying this request, event, order or trace id."),
    ] = None,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    data_dir: DataDir = Path(".msashop"),
) -> None:
    """The platform's logs across services, merged by time; filter by an id."""
    directory = data_dir / "logs"
    files = log_files(directory, service) if directory.is_dir() else []
    if not files:
        typer.echo(f"no logs{' of ' + service if service else ''} in {directory}", err=True)
        raise typer.Exit(1)
    for _, instance, record in read(files, id_):
        typer.echo(show(instance, record))
    if follow_:
        try:
            for line in follow(files, id_):
                typer.echo(line)
        except KeyboardInterrupt:
            pass
