"""What the current request carries, so outgoing calls can forward it without globals in handlers."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
authorization: ContextVar[str | None] = ContextVar("authorization", default=None)
