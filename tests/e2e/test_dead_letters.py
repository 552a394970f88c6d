"""A handler that keeps failing sends its event to the dead-letter queue after the configured
attempts; once it is fixed, `msashop dlq replay` has the event handled exactly once.

The failure is real handling of a real event: the notification service's fault file (see its
README, off unless set; the e2e platform points it at `Platform.notification_faults`) makes the
order notifications of one listed user raise. Deleting the file is the fix, no restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, Platform, ShopClient, User

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 5  # the services' default bus_max_attempts (chassis settings)


def dlq(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """`msashop dlq ...` against the platform under test, as an operator runs it."""
    env = {**os.environ, "MSASHOP_ADMIN_PASSWORD": ADMIN_PASSWORD, "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "msashop", "dlq", *args, "--data-dir", str(platform.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dead_letters(shop: ShopClient, service: str) -> list[dict[str, Any]]:
    response = shop.get(f"/api/admin/dlq/{service}", token=shop.admin_token())
    assert response.status_code == 200, (
        f"GET /api/admin/dlq/{service}: {response.status_code} {response.text}"
    )
    letters: list[dict[str, Any]] = response.json()
    return letters


def wait_for_dead_letter(shop: ShopClient, order_id: str, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for letter in dead_letters(shop, "notification"):
            if letter["envelope"]["data"].get("order_id") == order_id:
                return letter
        time.sleep(0.5)
    raise AssertionError(f"no dead letter for order {order_id} in notification after {within} s")


def wait_for_saga(
    shop: ShopClient, order_id: str, token: str, status: str, within: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    saga: dict[str, Any] = {}
    while time.monotonic() < deadline:
        saga = shop.get(f"/api/orders/{order_id}/saga", token=token).json()
        if saga["status"] == status:
            return saga
        time.sleep(0.3)
    raise AssertionError(f"saga of {order_id} not {status} after {within} s: {saga}")


@pytest.fixture
def failing_notifications(platform: Platform, buyer: User) -> Iterator[User]:
    """`buyer`, whose order notifications fail until the test deletes the fault file."""
    platform.notification_faults.write_text(buyer.id + "\n")
    yield buyer
    platform.notification_faults.unlink(missing_ok=True)


def test_a_failing_handler_dead_letters_and_a_replay_after_the_fix_notifies_once(
    platform: Platform, shop: ShopClient, failing_notifications: User
) -> None:
    buyer = failing_notifications
    [product] = shop.products_in_stock(1)
    order = shop.checkout(buyer.token, [(product["id"], 1)])
    assert order["status"] == "CONFIRMED", order

    letter = wait_for_dead_letter(shop, order["id"])
    assert (letter["group"], letter["subject"], letter["attempts"]) == (
        "notification",
        "notification.send",  # the saga's last step, SEND_NOTIFICATION
        MAX_ATTEMPTS,
    )
    assert letter["reason"].startswith("InjectedFault: injected fault for user " + buyer.id)
    assert [n for n in shop.notifications(buyer.token) if n["type"] == "order_confirmed"] == []
    # A failed notification never cancels a paid order: the saga waits on its last step.
    saga = shop.get(f"/api/orders/{order['id']}/saga", token=buyer.token).json()
    assert (saga["status"], saga["current_step"]) == ("RUNNING", "SEND_NOTIFICATION"), saga
    assert shop.get(f"/api/orders/{order['id']}", token=buyer.token).json()["status"] == "CONFIRMED"

    listed = dlq(platform, "list", "--service", "notification")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if f" {letter['id']} " in line]
    assert "notification.send" in row and "InjectedFault" in row and str(MAX_ATTEMPTS) in row
    shown = dlq(platform, "show", letter["id"])
    assert shown.returncode == 0, shown.stderr
    assert order["id"] in shown.stdout and "notification" in shown.stdout

    platform.notification_faults.unlink()  # the fix
    replayed = dlq(platform, "replay", "--all", "--service", "notification")
    assert replayed.returncode == 0, replayed.stderr
    assert "Replayed" in replayed.stdout and "notification:" in replayed.stdout

    shop.wait_for_notification(buyer.token, order["id"], "order_confirmed", within=30)
    time.sleep(2)  # time for a second, wrongful delivery to show
    confirmed = [n for n in shop.notifications(buyer.token) if n["type"] == "order_confirmed"]
    assert [n["order_id"] for n in confirmed] == [order["id"]]
    assert all(d["id"] != letter["id"] for d in dead_letters(shop, "notification"))
    saga = wait_for_saga(shop, order["id"], buyer.token, "COMPLETED")
    assert [s["status"] for s in saga["steps"] if s["name"] == "SEND_NOTIFICATION"][-1] == "COMPLETED"

    again = dlq(platform, "replay", letter["id"], "--service", "notification")
    assert again.returncode == 1 and "no dead letter" in again.stderr


def test_dead_letters_need_an_admin(shop: ShopClient, buyer: User) -> None:
    assert shop.get("/api/admin/dlq/notification").status_code == 401
    assert shop.get("/api/admin/dlq/notification", token=buyer.token).status_code == 403
    assert shop.get("/api/admin/dlq/nope", token=shop.admin_token()).status_code == 404
