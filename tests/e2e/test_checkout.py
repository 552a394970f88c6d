"""Checkout through the gateway, end to end: the saga's outcomes as a customer sees them."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import ShopClient, User

pytestmark = pytest.mark.e2e


def test_paid_order_is_confirmed_notified_and_takes_the_stock(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    start = product["stock"]

    response = shop.place_order(buyer.token, [(product["id"], 2)])

    assert response.status_code == 202, response.text
    placed = response.json()
    assert placed["status"] == "PENDING" and placed["id"]
    final = shop.wait_for_status(placed["id"], buyer.token)
    assert final["status"] == "CONFIRMED", final
    assert final["user_id"] == buyer.id
    assert [(i["product_id"], i["quantity"]) for i in final["items"]] == [(product["id"], 2)]
    # The shipping service priced delivery to the buyer's address (KR: rest of the world, never free).
    assert final["shipping_cost"] > 0
    assert final["total"] == pytest.approx(2 * product["price"] + final["shipping_cost"])
    shop.wait_for_notification(buyer.token, placed["id"], "order_confirmed")
    stock = shop.wait_for_stock(product["id"], start["available"] - 2, start["reserved"])
    assert (stock["available"], stock["reserved"]) == (start["available"] - 2, start["reserved"])
    assert [p["status"] for p in shop.payments(placed["id"], buyer.token)] == ["CAPTURED"]
    listed = shop.get("/api/orders", token=buyer.token, params={"page": 1, "page_size": 10}).json()
    assert placed["id"] in [o["id"] for o in listed["items"]]


def test_declined_payment_cancels_the_order_and_restores_the_stock(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    start = product["stock"]

    final = shop.checkout(buyer.token, [(product["id"], 3)], payment_token="tok_decline")

    assert (final["status"], final["status_reason"]) == ("CANCELLED", "payment_declined"), final
    stock = shop.wait_for_stock(product["id"], start["available"], start["reserved"])
    assert (stock["available"], stock["reserved"]) == (start["available"], start["reserved"])
    assert [p["status"] for p in shop.payments(final["id"], buyer.token)] == ["DECLINED"]


def test_order_for_more_than_the_stock_is_accepted_then_cancelled_out_of_stock(
    shop: ShopClient, buyer: User
) -> None:
    [product] = shop.products_in_stock(1)
    # One order line is capped at 100 units: buy the stock down below that first.
    while (available := shop.inventory(product["id"])["available"]) >= 100:
        assert (
            shop.checkout(buyer.token, [(product["id"], min(100, available - 50))])["status"] == "CONFIRMED"
        )
    start = shop.inventory(product["id"])

    final = shop.checkout(buyer.token, [(product["id"], start["available"] + 1)])

    assert (final["status"], final["status_reason"]) == ("CANCELLED", "out_of_stock"), final
    stock = shop.wait_for_stock(product["id"], start["available"], start["reserved"])
    assert (stock["available"], stock["reserved"]) == (start["available"], start["reserved"])
    assert shop.payments(final["id"], buyer.token) == []  # nothing was charged


def test_failing_payment_provider_cancels_the_order_payment_failed(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    start = product["stock"]

    final = shop.checkout(buyer.token, [(product["id"], 1)], payment_token="tok_error")

    assert (final["status"], final["status_reason"]) == ("CANCELLED", "payment_failed"), final
    stock = shop.wait_for_stock(product["id"], start["available"], start["reserved"])
    assert (stock["available"], stock["reserved"]) == (start["available"], start["reserved"])


def test_another_users_order_is_not_found(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    response = shop.place_order(buyer.token, [(product["id"], 1)])
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    stranger = shop.register_and_login("Stranger")

    seen_by_stranger = shop.get(f"/api/orders/{order_id}", token=stranger.token)
    cancelled_by_stranger = shop.post(f"/api/orders/{order_id}/cancel", token=stranger.token)
    listed_for_stranger = shop.get("/api/orders", token=stranger.token).json()

    assert seen_by_stranger.status_code == 404, seen_by_stranger.text
    assert seen_by_stranger.json()["error"]["code"]
    assert cancelled_by_stranger.status_code == 404, cancelled_by_stranger.text
    assert listed_for_stranger["items"] == [] and listed_for_stranger["total"] == 0
    assert shop.get(f"/api/orders/{order_id}").status_code == 401
    assert shop.get(f"/api/orders/{order_id}", token=shop.admin_token()).status_code == 200
    assert shop.wait_for_status(order_id, buyer.token)["status"] == "CONFIRMED"


def test_replaying_an_order_with_the_same_key_returns_the_same_order(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    key = uuid.uuid4().hex

    first = shop.place_order(buyer.token, [(product["id"], 1)], key=key)
    again = shop.place_order(buyer.token, [(product["id"], 1)], key=key)
    changed = shop.place_order(buyer.token, [(product["id"], 2)], key=key)

    assert first.status_code == 202, first.text
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert changed.status_code == 422, changed.text
    assert changed.json()["error"]["code"]
    shop.wait_for_status(first.json()["id"], buyer.token)
    mine = shop.get("/api/orders", token=buyer.token, params={"page_size": 100}).json()
    assert [o["id"] for o in mine["items"]] == [first.json()["id"]]


def test_order_without_idempotency_key_or_with_bad_items_is_rejected(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    body = shop.order_body([(product["id"], 1)])

    bad_quantity = shop.post(
        "/api/orders",
        token=buyer.token,
        json=shop.order_body([(product["id"], 0)]),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    anonymous = shop.post("/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

    assert bad_quantity.status_code == 422, bad_quantity.text
    assert anonymous.status_code == 401, anonymous.text
    assert shop.get("/api/orders", token=buyer.token).json()["total"] == 0


def test_cancelling_a_confirmed_order_refunds_restocks_and_notifies(shop: ShopClient, buyer: User) -> None:
    [product] = shop.products_in_stock(1)
    start = product["stock"]
    confirmed = shop.checkout(buyer.token, [(product["id"], 2)])
    assert confirmed["status"] == "CONFIRMED", confirmed
    shop.wait_for_notification(buyer.token, confirmed["id"], "order_confirmed")

    response = shop.post(f"/api/orders/{confirmed['id']}/cancel", token=buyer.token)

    assert response.status_code == 202, response.text
    final = shop.wait_for_status(confirmed["id"], buyer.token, until=("CANCELLED",))
    assert final["status_reason"] == "cancelled_by_user", final
    shop.wait_for_notification(buyer.token, confirmed["id"], "order_cancelled")
    kinds = {n["type"] for n in shop.notifications(buyer.token) if n["order_id"] == confirmed["id"]}
    assert kinds == {"order_confirmed", "order_cancelled"}
    [payment] = shop.payments(confirmed["id"], buyer.token)
    assert payment["status"] == "REFUNDED" and payment["refunded_amount"] == pytest.approx(payment["amount"])
    stock = shop.wait_for_stock(product["id"], start["available"], start["reserved"])
    assert (stock["available"], stock["reserved"]) == (start["available"], start["reserved"])
    again = shop.post(f"/api/orders/{confirmed['id']}/cancel", token=buyer.token)
    assert again.status_code == 409, again.text
