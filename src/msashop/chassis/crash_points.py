"""Crash points: kill the process at a named point of message handling, for crash tests.

Off unless the service's `CRASH_FILE` setting (`MSASHOP_<SERVICE>_CRASH_FILE`) names a file;
production refuses the setting. Each line of the file names one point:

    before_commit:<subject>   the handler ran, its transaction is not committed yet
    after_commit:<subject>    committed, but the message is not acknowledged yet

The first time a listed point is reached the line is removed from the file and the process
exits at once with status 137, as if killed with SIGKILL: no cleanup, no acknowledgement, no
rollback beyond what the database does for an unfinished transaction. The supervisor restarts
the service and the bus redelivers the message, which is what a crash test then checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger()
KILLED = 137


class CrashPoints:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def reach(self, point: str) -> None:
        """Exit now if the file lists `point` (read each time, so a test can arm it while running)."""
        if self.path is None:
            return
        try:
            listed = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        if point not in (line.strip() for line in listed):
            return
        remaining = [line for line in listed if line.strip() != point]
        self.path.write_text("".join(line + "\n" for line in remaining))
        log.warning("crash_point.reached", point=point)
        os._exit(KILLED)
