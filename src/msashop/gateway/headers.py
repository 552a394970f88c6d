"""Which headers cross the gateway, in each direction (pure, no I/O).

The rules work on the wire form (bytes, as the ASGI server hands them over and the upstream
client sends them), so a request costs no decoding and re-encoding of every header; the str
functions at the end are the same rules for callers that hold text.
"""

from __future__ import annotations

from collections.abc import Iterable

from msashop.chassis.auth import Principal

Header = tuple[str, str]
RawHeader = tuple[bytes, bytes]

# RFC 9110 hop-by-hop headers: they describe one connection, never the next one.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host"}
)

# Identity is the gateway's word after checking the token; a client never gets to say it. The
# service token is the gateway's own (forward.py adds it): a client's, even a leaked valid one,
# never crosses the edge.
IDENTITY = frozenset({b"x-user-id", b"x-user-roles", b"x-service-token"})

# Set by the gateway itself (below, and the trace context by proxy.py from its client span), so
# a client's values are dropped rather than passed on.
EDGE_SET = frozenset(
    {b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto", b"traceparent", b"tracestate"}
)

# Recomputed from the bytes actually sent. `Expect: 100-continue` is this hop's business: the
# gateway has the whole body before it calls the service.
FRAMING = frozenset({b"content-length", b"expect"})
SERVER_SET = frozenset({b"date", b"server", b"x-request-id"})

_NOT_UPSTREAM = IDENTITY | EDGE_SET | FRAMING
_NOT_DOWNSTREAM = FRAMING | SERVER_SET


def _is_hop_by_hop(name: bytes, listed: set[bytes]) -> bool:
    return name in HOP_BY_HOP or name.startswith(b"proxy-") or name in listed


def _connection_listed(headers: Iterable[RawHeader]) -> set[bytes]:
    """Headers the sender named in `Connection` are hop-by-hop too."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    }


def _safe(value: str) -> bytes:
    # Values the gateway writes itself: a line break would start a header of its own.
    if "\n" in value or "\r" in value:
        raise ValueError("a header value must not contain a line break")
    return value.encode()


def upstream_raw(
    incoming: list[RawHeader],
    *,
    principal: Principal | None,
    request_id: str | None,
    client_ip: str | None,
    proto: str,
) -> list[RawHeader]:
    """The headers a service receives for a client's request."""
    listed = _connection_listed(incoming)
    out = [
        (name, value)
        for name, value in incoming
        if not _is_hop_by_hop(lname := name.lower(), listed) and lname not in _NOT_UPSTREAM
    ]
    if principal is not None:
        out += [(b"X-User-Id", _safe(principal.user_id)), (b"X-User-Roles", _safe(",".join(principal.roles)))]
    if request_id:
        out.append((b"X-Request-Id", _safe(request_id)))
    # The gateway is the edge: an X-Forwarded-For the client sent is not evidence of anything.
    if client_ip:
        out.append((b"X-Forwarded-For", _safe(client_ip)))
    out.append((b"X-Forwarded-Proto", _safe(proto)))
    return out


def downstream_raw(upstream: list[RawHeader]) -> list[RawHeader]:
    """The headers the client receives from a service's answer."""
    listed = _connection_listed(upstream)
    return [
        (name, value)
        for name, value in upstream
        if not _is_hop_by_hop(lname := name.lower(), listed) and lname not in _NOT_DOWNSTREAM
    ]


def _raw(headers: list[Header]) -> list[RawHeader]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _text(headers: list[RawHeader]) -> list[Header]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]


def upstream_headers(
    incoming: list[Header],
    *,
    principal: Principal | None,
    request_id: str | None,
    client_ip: str | None,
    proto: str,
) -> list[Header]:
    """`upstream_raw` for text headers."""
    raw = upstream_raw(
        _raw(incoming), principal=principal, request_id=request_id, client_ip=client_ip, proto=proto
    )
    return _text(raw)


def downstream_headers(upstream: list[Header]) -> list[Header]:
    """`downstream_raw` for text headers."""
    return _text(downstream_raw(_raw(upstream)))
