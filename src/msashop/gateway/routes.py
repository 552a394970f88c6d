"""Which service owns a public path, and the path that service sees (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

# First segment after /api -> owning service. The gateway strips "/api" and keeps the rest.
ROUTES: dict[str, str] = {
    "auth": "user",
    "users": "user",
    "products": "product",
    "inventory": "inventory",
    "orders": "order",
    "payments": "payment",
    "notifications": "notification",
    # The strangler fig's monolith: its old-style API (/api/legacy/products, /api/legacy/orders).
    "legacy": "legacy",
}

# Platform components that are not services (no /health entry, no OpenAPI merge): the embedded
# trace store, absent when traces go to an external collector (then its paths answer 503).
AUXILIARY: dict[str, str] = {"traces": "traces"}

# Paths outside /api that still belong to a service, forwarded unchanged.
PASSTHROUGH: dict[str, str] = {"/.well-known/jwks.json": "user"}

# Services with no public route (answered over the bus only); /health still reports them.
INTERNAL: tuple[str, ...] = ("shipping",)

SERVICES: tuple[str, ...] = tuple(sorted(set(ROUTES.values()) | set(PASSTHROUGH.values()) | set(INTERNAL)))

# Per-service admin APIs: /api/admin/<area>/<service>/rest -> <service>'s /admin/<area>/rest.
ADMIN_AREAS: frozenset[str] = frozenset({"dlq", "projections", "keys"})


@dataclass(frozen=True)
class Target:
    service: str
    path: str


def resolve(path: str) -> Target | None:
    """`/api/products/p1` -> Target("product", "/products/p1"); None when no service owns `path`."""
    if path in PASSTHROUGH:
        return Target(PASSTHROUGH[path], path)
    if not path.startswith("/api/"):
        return None
    rest = path[len("/api") :]
    segments = rest.split("/")
    # Dot segments could step out of the prefix that chose the service: refuse them.
    if any(unquote(s) in (".", "..") for s in segments):
        return None
    if segments[1] == "admin":
        return _admin_target(segments)
    service = ROUTES.get(segments[1]) or AUXILIARY.get(segments[1])
    return Target(service, rest) if service else None


def _admin_target(segments: list[str]) -> Target | None:
    """`["", "admin", "dlq", "order", "x"]` -> Target("order", "/admin/dlq/x")."""
    if len(segments) < 4 or segments[2] not in ADMIN_AREAS or segments[3] not in SERVICES:
        return None
    area, service, rest = segments[2], segments[3], segments[4:]
    return Target(service, "/".join(["", "admin", area, *rest]))
