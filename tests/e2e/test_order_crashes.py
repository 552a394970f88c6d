"""Crash tests: the order service dies mid-saga (os._exit at a crash point, like kill -9) and the
supervisor restarts it; the redelivered reply completes the saga with exactly one capture.

The crash points (chassis/crash_points.py) sit between the saga's handler and its commit, so
the process dies with the reply handled in memory and nothing of it stored: the worst moment.
On NATS the unacknowledged reply comes back after the consumer's ack wait (15 s).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Platform, ShopClient, User

pytestmark = pytest.mark.e2e

RECOVERY_SECONDS = 90  # ack wait (15 s) + restart + the rest of the saga, with room to spare


def wait_until_consumed(platform: Platform, point: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if point not in platform.order_crash_points.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"crash point {point} was never reached")


def wait_for_completed_saga(shop: ShopClient, order_id: str, token: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + RECOVERY_SECONDS
    saga: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        response = shop.get(f"/api/orders/{order_id}/saga", token=token)
        if response.status_code == 200:
            saga = response.json()
            if saga["status"] == "COMPLETED":
                return saga
        time.sleep(1)
    raise AssertionError(f"saga of {order_id} not COMPLETED after {RECOVERY_SECONDS} s: {saga}")


@pytest.mark.parametrize(
    "point",
    [
        "before_commit:payment.captured",  # the payment is captured, the saga has not recorded it
        "before_commit:inventory.reserved",  # stock reserved, the charge not yet queued
    ],
)
def test_order_service_crash_mid_saga_completes_with_one_capture(
    platform: Platform, shop: ShopClient, buyer: User, point: str
) -> None:
    [product] = shop.products_in_stock(1)
    before = shop.inventory(product["id"])
    platform.order_crash_points.write_text(point + "\n")
    try:
        response = shop.place_order(buyer.token, [(product["id"], 2)])
        assert response.status_code == 202, response.text
        order_id = response.json()["id"]
        wait_until_consumed(platform, point)  # the order service died here
        saga = wait_for_completed_saga(shop, order_id, buyer.token)
    finally:
        platform.order_crash_points.unlink(missing_ok=True)

    order = shop.get(f"/api/orders/{order_id}", token=buyer.token).json()
    assert order["status"] == "CONFIRMED", order
    [payment] = shop.payments(order_id, buyer.token)  # one payment, captured once
    assert (payment["status"], payment["amount"], payment["refunded_amount"]) == (
        "CAPTURED",
        order["total"],
        0,
    )
    assert [s["name"] for s in saga["steps"]].count("PROCESS_PAYMENT") == 1
    confirmed = [n for n in shop.notifications(buyer.token) if n["order_id"] == order_id]
    assert [n["type"] for n in confirmed] == ["order_confirmed"]
    stock = shop.wait_for_stock(product["id"], before["available"] - 2, before["reserved"])
    assert (stock["available"], stock["reserved"]) == (before["available"] - 2, before["reserved"])
