"""Zero trust inside, on a real platform: services call each other with service tokens made from
the client secrets `msashop up` keeps, and a caller reaching a service port directly gets nothing
from naming a user."""

from __future__ import annotations

import json
import stat

import httpx

from tests.e2e.conftest import Platform, ShopClient, User


def service_url(platform: Platform, service: str) -> str:
    found = json.loads(platform.ports_file.read_text())[service]
    return str(found[0] if isinstance(found, list) else found)


def test_each_service_has_its_own_private_secret(platform: Platform) -> None:
    secrets = platform.data_dir / "secrets"
    for service in ("user", "order", "gateway"):
        path = secrets / f"{service}.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() not in (secrets / "clients.json").read_text()


def test_composition_goes_through_with_orders_service_token(shop: ShopClient, buyer: User) -> None:
    product = shop.products_in_stock(1)[0]
    order = shop.checkout(buyer.token, [(product["id"], 1)])
    # order -> user /users/batch and order -> product /products/batch, each with order's token.
    composed = shop.get(f"/api/orders/{order['id']}", token=buyer.token, params={"expand": "user,products"})
    assert composed.status_code == 200, composed.text
    body = composed.json()
    assert body["user"]["id"] == buyer.id and body["user"]["email"] == buyer.email, body
    assert not body.get("degraded"), body


def test_a_direct_caller_naming_a_user_is_anonymous(platform: Platform, buyer: User) -> None:
    user = service_url(platform, "user")
    spoofed = {"X-User-Id": buyer.id, "X-User-Roles": "admin"}
    if user.startswith("https"):  # mTLS on: no certificate, no connection at all
        return
    assert httpx.get(f"{user}/users/me", headers=spoofed, timeout=5).status_code == 401
    forged = {**spoofed, "X-Service-Token": "e30.e30.e30"}
    assert httpx.get(f"{user}/users/me", headers=forged, timeout=5).status_code == 401


def test_the_token_endpoint_is_not_public(shop: ShopClient) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "order",
        "client_secret": "x",
        "audience": "user",
    }
    for path in ("/oauth/token", "/api/oauth/token"):
        assert shop.post(path, data=form).status_code in (404, 405), path
