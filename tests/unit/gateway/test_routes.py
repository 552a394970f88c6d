"""Which service owns a public path, and what path it sees."""

import pytest

from msashop.gateway.routes import SERVICES, Target, resolve


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/auth/login", Target("user", "/auth/login")),
        ("/api/users/me", Target("user", "/users/me")),
        ("/api/products", Target("product", "/products")),
        ("/api/products/p1/reviews", Target("product", "/products/p1/reviews")),
        ("/api/inventory/p1", Target("inventory", "/inventory/p1")),
        ("/api/orders/o1/cancel", Target("order", "/orders/o1/cancel")),
        ("/api/payments", Target("payment", "/payments")),
        ("/api/notifications", Target("notification", "/notifications")),
        ("/.well-known/jwks.json", Target("user", "/.well-known/jwks.json")),
    ],
)
def test_prefix_picks_the_service_and_api_is_stripped(path: str, expected: Target) -> None:
    assert resolve(path) == expected


@pytest.mark.parametrize(
    "path",
    ["/api/unknown/x", "/api/", "/api", "/products", "/api/productsx", "/api/Products", "/health"],
)
def test_paths_no_service_owns_resolve_to_nothing(path: str) -> None:
    assert resolve(path) is None


@pytest.mark.parametrize(
    "path", ["/api/products/../users/me", "/api/products/%2e%2e/users", "/api/orders/./x"]
)
def test_dot_segments_are_refused(path: str) -> None:
    assert resolve(path) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/admin/dlq/notification", Target("notification", "/admin/dlq")),
        ("/api/admin/dlq/order/abc", Target("order", "/admin/dlq/abc")),
        ("/api/admin/dlq/order/abc/replay", Target("order", "/admin/dlq/abc/replay")),
        ("/api/admin/dlq/inventory/replay", Target("inventory", "/admin/dlq/replay")),
    ],
)
def test_admin_dlq_goes_to_the_named_service_without_its_name(path: str, expected: Target) -> None:
    assert resolve(path) == expected


@pytest.mark.parametrize(
    "path",
    ["/api/admin", "/api/admin/dlq", "/api/admin/dlq/gateway", "/api/admin/dlq/nope/x", "/api/admin/x/order"],
)
def test_admin_paths_without_a_known_area_and_service_resolve_to_nothing(path: str) -> None:
    assert resolve(path) is None


def test_health_covers_every_routed_service() -> None:
    assert SERVICES == (
        "inventory",
        "legacy",
        "notification",
        "order",
        "payment",
        "product",
        "shipping",
        "user",
    )
