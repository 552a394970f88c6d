"""The platform's public OpenAPI document: every service's own, at the paths the gateway serves.

The gateway proxies and has no API of its own, so `GET /openapi.json` (and the Swagger UI at
/docs) asks each service for its /openapi.json and merges them. A service path is kept only where
`routes.resolve` sends the public path back to that same service and path, so the document never
names a path the gateway would not route (e.g. the legacy monolith's copy of /products). On top
of what each route declares, the edge adds what it can answer on any route: the CONTRACT's error
body for every error (FastAPI's default 422 `{"detail": [...]}` is not what the services send),
401 (the gateway checks any bearer token it is given), 413 (bodies over its limit), 429 (rate
limits) and 503 (no instance of the service).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog

from msashop.gateway.routes import ADMIN_AREAS, INTERNAL, PASSTHROUGH, ROUTES, Target, resolve

log = structlog.get_logger()

Document = dict[str, Any]
Fetch = Callable[[str], Awaitable[Document]]

ERROR = "Error"
ERROR_SCHEMA: Document = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
# Answered by the edge (or by every service) whatever the route declares.
EDGE_ERRORS = {
    "401": "missing, invalid, expired or revoked access token",
    "429": "rate limited (`Retry-After` and `X-RateLimit-*` headers)",
    "503": "no instance of the service is available",
}
BODY_ERRORS = {
    "400": "the body is not valid JSON",
    "413": "request body larger than the gateway's limit (1 MiB)",
}
PATH_ERRORS = {"404": "no such resource, or not the caller's"}
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def public_services() -> tuple[str, ...]:
    """The services whose documents are merged: every one the gateway routes to."""
    return tuple(sorted(set(ROUTES.values()) | set(PASSTHROUGH.values()) | set(INTERNAL)))


def public_path(service: str, path: str) -> str | None:
    """The path the gateway serves for `service`'s own `path`, or None if it serves none."""
    candidates = [path, "/api" + path]
    segments = path.split("/")
    if len(segments) >= 3 and segments[1] == "admin" and segments[2] in ADMIN_AREAS:
        candidates.append("/".join(["/api/admin", segments[2], service, *segments[3:]]))
    for candidate in candidates:
        if resolve(candidate) == Target(service, path):
            return candidate
    return None


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every {"$ref": ...} object in a document."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _error_content(description: str) -> Document:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}},
    }


def _edge_responses(path: str, method: str, operation: Document) -> None:
    responses: Document = operation.setdefault("responses", {})
    if "422" in responses:  # the services' validation error is the CONTRACT's body, not FastAPI's
        responses["422"] = _error_content("request is not valid")
    for status, description in EDGE_ERRORS.items():
        responses.setdefault(status, _error_content(description))
    if method in ("post", "put", "patch"):
        for status, description in BODY_ERRORS.items():
            responses.setdefault(status, _error_content(description))
    if "{" in path:  # an id in the path: an unknown one (or someone else's) is 404
        for status, description in PATH_ERRORS.items():
            responses.setdefault(status, _error_content(description))
    for status, answer in responses.items():
        if status[0] in "45" and "content" not in answer:  # declared by a route without a body
            answer.update(_error_content(answer.get("description", "error")))


def merge(documents: dict[str, Document], *, title: str = "msashop", version: str = "") -> Document:
    """One OpenAPI 3.1 document from {service: its /openapi.json}, at the gateway's paths."""
    paths: Document = {}
    schemas: Document = {ERROR: ERROR_SCHEMA}
    for service, original in sorted(documents.items()):
        doc = copy.deepcopy(original)
        own: Document = doc.get("components", {}).get("schemas", {})
        # Same name, other shape in an earlier service: this service's copy gets its own name.
        renamed = {
            name: f"{service.capitalize()}{name}"
            for name, schema in own.items()
            if name in schemas and schemas[name] != schema
        }
        for ref in _refs(doc):
            name = ref["$ref"].rsplit("/", 1)[-1]
            if name in renamed:
                ref["$ref"] = f"#/components/schemas/{renamed[name]}"
        for name, schema in own.items():
            schemas.setdefault(renamed.get(name, name), schema)
        for path, item in doc.get("paths", {}).items():
            public = public_path(service, path)
            if public is None:
                continue
            for method, operation in item.items():
                if method not in METHODS:
                    continue
                if "operationId" in operation:  # FastAPI's ids repeat across services (/admin/dlq)
                    operation["operationId"] = f"{service}_{operation['operationId']}"
                _edge_responses(public, method, operation)
            paths[public] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


class PlatformDocument:
    """The merged document, rebuilt at most every `max_age` seconds; a service that does not
    answer is left out of that build (and the build is not kept, so the next request retries)."""

    def __init__(self, fetch: Fetch, *, version: str = "", max_age: float = 60.0) -> None:
        self.fetch = fetch
        self.version = version
        self.max_age = max_age
        self._cached: Document | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Document:
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._built_at < self.max_age:
                return self._cached
            services = public_services()
            answers = await asyncio.gather(*(self.fetch(s) for s in services), return_exceptions=True)
            documents: dict[str, Document] = {}
            for service, answer in zip(services, answers, strict=True):
                if isinstance(answer, BaseException):
                    log.warning("openapi.service_missing", upstream=service, error=type(answer).__name__)
                else:
                    documents[service] = answer
            merged = merge(documents, version=self.version)
            if len(documents) == len(services):
                self._cached, self._built_at = merged, time.monotonic()
            return merged
