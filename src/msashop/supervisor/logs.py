"""Child output: the raw line goes to `<data-dir>/logs/<name>.log`, a compact one to the console."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3
# Keys every service line carries (the console already says which child it came from) and
# ids only worth reading in the log file.
NOISE_KEYS = {
    "event",
    "level",
    "timestamp",
    "service",
    "version",
    "logger",
    "event_id",
    "correlation_id",
    "request_id",
}
UUID = re.compile(r"^([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# uvicorn and alembic chatter around start and stop; the supervisor's own ✓ and ■ lines say it.
BOILERPLATE = (
    "Started server process",
    "Waiting for application",
    "Application startup complete",
    "Application shutdown complete",
    "Finished server process",
    "Shutting down",
    "Uvicorn running on",
    "Context impl ",
    "Will assume ",
)
MAX_CONSOLE_KEYS = 6
MAX_VALUE_CHARS = 80
LOUD_LEVELS = {"warning", "error", "critical", "exception"}
# nats-server: "[123] 2025/01/01 10:00:00.000000 [INF] Server is ready"
NATS_LINE = re.compile(r"^\[\d+\] \S+ \S+ \[(INF|WRN|ERR|FTL|DBG|TRC)\] (.*)$")
NATS_LEVELS = {
    "INF": "info",
    "WRN": "warning",
    "ERR": "error",
    "FTL": "critical",
    "DBG": "debug",
    "TRC": "debug",
}
# valkey-server: "123:M 01 Jan 2025 10:00:00.000 * Ready to accept connections tcp"
VALKEY_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ ([.*#-]) (.*)$")
VALKEY_LEVELS = {".": "debug", "-": "debug", "*": "info", "#": "warning"}
# Valkey marks these routine messages "#"; they are not worth a warning on the console.
VALKEY_ROUTINE = (
    "WARNING Memory overcommit",
    "Valkey is now ready to exit",
    "User requested shutdown",
    "Received SIGTERM",
    "Server initialized",
)


class LogFile:
    """Append-only log that rotates at `max_bytes` into name.log.1 .. name.log.<backups>."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._size = path.stat().st_size

    def write(self, line: str) -> None:
        data = line.rstrip("\n") + "\n"
        size = len(data.encode("utf-8"))
        if self._size and self._size + size > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += size

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}")
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups > 0:
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._size = 0


@dataclass(frozen=True)
class ConsoleLine:
    level: str  # "debug", "info", "warning", "error", "critical", or "" for plain text
    text: str


def compact(raw: str) -> ConsoleLine:
    """A JSON log line becomes `event key=value ...` with its level; other text passes through."""
    line = raw.rstrip("\n")
    if not line.startswith("{"):
        return _infra_line(line)
    try:
        record = json.loads(line)
    except ValueError:
        return ConsoleLine("", line)
    if not isinstance(record, dict):
        return ConsoleLine("", line)
    level = str(record.get("level", "info")).lower()
    parts = [str(record.get("event", ""))]
    extras = [(k, v) for k, v in record.items() if k not in NOISE_KEYS and k != "exception"]
    for key, value in extras[:MAX_CONSOLE_KEYS]:
        parts.append(f"{key}={_short(value)}")
    if len(extras) > MAX_CONSOLE_KEYS:
        parts.append("…")
    if "exception" in record:
        # The last line of a traceback names the error; the full one is in the log file.
        last = str(record["exception"]).strip().splitlines()[-1:] or [""]
        parts.append(f"exception={last[0]}")
    return ConsoleLine(level, " ".join(p for p in parts if p))


def _infra_line(line: str) -> ConsoleLine:
    """Lines of nats-server and valkey-server, with their level marker turned into a level;
    start/stop boilerplate of uvicorn and alembic is marked debug."""
    if line.startswith(BOILERPLATE):
        return ConsoleLine("debug", line)
    if match := NATS_LINE.match(line):
        return ConsoleLine(NATS_LEVELS[match.group(1)], match.group(2))
    if match := VALKEY_LINE.match(line):
        text = match.group(2)
        level = "info" if text.startswith(VALKEY_ROUTINE) else VALKEY_LEVELS[match.group(1)]
        return ConsoleLine(level, text.removeprefix("WARNING ") if level == "warning" else text)
    return ConsoleLine("", line)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if match := UUID.match(text):
        return match.group(1)  # enough to follow one order through the services
    if " " in text and isinstance(value, str):
        text = json.dumps(text)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
