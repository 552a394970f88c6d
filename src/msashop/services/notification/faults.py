"""Fault injection for tests of the dead-letter queue: make order notifications fail on purpose.

Off unless `MSASHOP_NOTIFICATION_FAULT_FILE` names a file (production refuses the setting). While
that file lists a user id (one a line), the order notifications of that user raise, so the
event is retried and then dead-lettered; deleting the file is the "fix", no restart needed.
"""

from __future__ import annotations

from pathlib import Path


class InjectedFault(RuntimeError):
    """Raised on purpose (see MSASHOP_NOTIFICATION_FAULT_FILE)."""


class FaultFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def check(self, user_id: str) -> None:
        """Raise InjectedFault when the file lists `user_id`; read at each call so edits count."""
        if self.path is None:
            return
        try:
            listed = {line.strip() for line in self.path.read_text().splitlines()}
        except FileNotFoundError:
            return
        if user_id in listed:
            raise InjectedFault(f"injected fault for user {user_id} ({self.path})")
