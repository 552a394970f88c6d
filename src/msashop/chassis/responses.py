"""Error answers a route declares in its OpenAPI (`responses=`), in the CONTRACT's error body.

The error handlers (errors.py) answer every error as `{"error": {"code", "message"}}`; these
declarations make a service's /openapi.json say so, per status, where a route can answer it.
The gateway's merged document (gateway/openapi.py) adds what any route can answer at the edge.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


DESCRIPTIONS = {
    400: "the body is not valid JSON",
    403: "the caller lacks the role this needs (admin)",
    404: "no such resource, or not the caller's",
    409: "the resource's state does not allow this",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each with the error body."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS[s]} for s in statuses}


ADMIN = errors(403)
