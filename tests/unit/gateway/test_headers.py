"""Which headers cross the gateway in each direction."""

from msashop.chassis.auth import Principal
from msashop.gateway.headers import downstream_headers, upstream_headers


def _names(headers: list[tuple[str, str]]) -> list[str]:
    return [name.lower() for name, _ in headers]


def _up(incoming: list[tuple[str, str]], principal: Principal | None = None) -> list[tuple[str, str]]:
    return upstream_headers(
        incoming, principal=principal, request_id="rid-1", client_ip="10.0.0.9", proto="https"
    )


def test_client_sent_identity_is_always_dropped() -> None:
    out = _up([("X-User-Id", "admin"), ("x-user-roles", "admin"), ("accept", "application/json")])
    assert ("accept", "application/json") in out
    assert "x-user-id" not in _names(out) and "x-user-roles" not in _names(out)


def test_identity_comes_from_the_verified_principal_only() -> None:
    out = _up([("X-User-Id", "someone-else")], Principal(user_id="u1", roles=("customer", "admin")))
    assert [v for n, v in out if n.lower() == "x-user-id"] == ["u1"]
    assert [v for n, v in out if n.lower() == "x-user-roles"] == ["customer,admin"]


def test_hop_by_hop_headers_and_those_named_in_connection_are_dropped() -> None:
    incoming = [
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("TE", "trailers"),
        ("Trailer", "x"),
        ("Upgrade", "websocket"),
        ("Proxy-Authorization", "Basic xyz"),
        ("Host", "shop.example"),
        ("X-Secret-Hop", "1"),
        ("Content-Length", "12"),
        ("Authorization", "Bearer t"),
        ("Content-Type", "application/json"),
    ]
    out = _up(incoming)
    assert ("Authorization", "Bearer t") in out and ("Content-Type", "application/json") in out
    dropped = {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "host",
        "x-secret-hop",
        "content-length",
    }
    assert dropped.isdisjoint(_names(out))


def test_edge_headers_are_set_by_the_gateway_not_the_client() -> None:
    out = _up([("X-Forwarded-For", "1.2.3.4"), ("X-Request-Id", "client"), ("X-Forwarded-Proto", "gopher")])
    assert [(n, v) for n, v in out if n.lower().startswith("x-")] == [
        ("X-Request-Id", "rid-1"),
        ("X-Forwarded-For", "10.0.0.9"),
        ("X-Forwarded-Proto", "https"),
    ]


def test_response_keeps_repeated_headers_and_drops_hop_by_hop() -> None:
    upstream = [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("Content-Length", "99"),
        ("X-Request-Id", "rid-1"),
        ("Date", "Mon"),
        ("Retry-After", "3"),
    ]
    assert downstream_headers(upstream) == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Retry-After", "3"),
    ]
