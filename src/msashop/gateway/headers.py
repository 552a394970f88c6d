"""Which headers cross the gateway, in each direction (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable

from msashop.chassis.auth import Principal

Header = tuple[str, str]

# RFC 9110 hop-by-hop headers: they describe one connection, never the next one.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"})

# Identity is the gateway's word after checking the token; a client never gets to say it.
IDENTITY = frozenset({"x-user-id", "x-user-roles"})

# Set by the gateway itself (below), so a client's values are dropped rather than passed on.
EDGE_SET = frozenset({"x-request-id", "x-forwarded-for", "x-forwarded-proto"})

# Recomputed from the bytes actually sent, or added by our own server.
FRAMING = frozenset({"content-length"})
SERVER_SET = frozenset({"date", "server", "x-request-id"})


def _is_hop_by_hop(name: str, listed: set[str]) -> bool:
    return name in HOP_BY_HOP or name.startswith("proxy-") or name in listed


def _connection_listed(headers: Iterable[Header]) -> set[str]:
    """Headers the sender named in `Connection` are hop-by-hop too."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }


def upstream_headers(
    incoming: list[Header],
    *,
    principal: Principal | None,
    request_id: str | None,
    client_ip: str | None,
    proto: str,
) -> list[Header]:
    """The headers a service receives for a client's request."""
    listed = _connection_listed(incoming)
    out = [
        (name, value)
        for name, value in incoming
        if not _is_hop_by_hop(lname := name.lower(), listed) and lname not in IDENTITY | EDGE_SET | FRAMING
    ]
    if principal is not None:
        out += [("X-User-Id", principal.user_id), ("X-User-Roles", ",".join(principal.roles))]
    if request_id:
        out.append(("X-Request-Id", request_id))
    # The gateway is the edge: an X-Forwarded-For the client sent is not evidence of anything.
    if client_ip:
        out.append(("X-Forwarded-For", client_ip))
    out.append(("X-Forwarded-Proto", proto))
    return out


def downstream_headers(upstream: list[Header]) -> list[Header]:
    """The headers the client receives from a service's answer."""
    listed = _connection_listed(upstream)
    return [
        (name, value)
        for name, value in upstream
        if not _is_hop_by_hop(lname := name.lower(), listed) and lname not in FRAMING | SERVER_SET
    ]
