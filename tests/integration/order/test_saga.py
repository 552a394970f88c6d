"""The checkout saga driven by the replies inventory, payment and notification publish on the bus.

Deadlines, resends and failed compensations: test_saga_recovery.py.
"""

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import (
    NotificationSent,
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    PaymentRefunded,
    PaymentRefundSkipped,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.order.db import SagaRepository

from .conftest import Shop, confirmed, reserved, steps


async def _payment_token(shop: Shop, order_id: str) -> str | None:
    async with shop.service.unit_of_work() as uow:
        saga = await SagaRepository(uow.session).for_order(order_id)
    assert saga is not None
    return saga.payment_token


async def test_happy_path_reserves_charges_commits_and_confirms(shop: Shop) -> None:
    order = await reserved(shop)
    saga_id = (await shop.saga(order["id"]))["saga_id"]
    [charge] = shop.sent("payment.charge", order["id"])
    assert charge.id == deterministic_id(saga_id, "charge")
    assert charge.data == {
        "order_id": order["id"],
        "user_id": "u1",
        "amount": "44.48",
        "currency": "USD",
        "token": "tok_visa",
        "idempotency_key": f"{saga_id}:charge",
    }
    assert await _payment_token(shop, order["id"]) is None  # it left with the charge

    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert (await shop.order(order["id"]))["status"] == "CONFIRMED"
    [commit] = shop.sent("inventory.commit", order["id"])
    assert commit.data["idempotency_key"] == f"{saga_id}:commit"
    [confirmed] = shop.sent("order.confirmed", order["id"])
    assert confirmed.data["total"] == "44.48"  # 2 x 19.99 + 4.50 shipping

    [notify] = shop.sent("notification.send", order["id"])
    assert notify.data == {
        "order_id": order["id"],
        "user_id": "u1",
        "type": "order_confirmed",
        "total": "44.48",
        "currency": "USD",
        "idempotency_key": f"{saga_id}:notify",
    }

    await shop.reply(StockCommitted(order_id=order["id"]))
    assert (await shop.saga(order["id"]))["status"] == "RUNNING"  # the notification is still out
    await shop.reply(NotificationSent(order_id=order["id"], notification_id="n-1", delivered_via="recorded"))
    saga = await shop.saga(order["id"])
    assert saga["status"] == "COMPLETED"
    assert steps(saga) == [
        ("CREATE_ORDER", "COMPLETED"),
        ("RESERVE_INVENTORY", "COMPLETED"),
        ("PROCESS_PAYMENT", "COMPLETED"),
        ("COMMIT_INVENTORY", "COMPLETED"),
        ("SEND_NOTIFICATION", "COMPLETED"),
    ]
    assert all(s["finished_at"] for s in saga["steps"])


async def test_declined_payment_cancels_and_releases_stock(shop: Shop) -> None:
    order = await reserved(shop)
    await shop.reply(PaymentDeclined(order_id=order["id"], reason="card_declined"))
    current = await shop.order(order["id"])
    assert (current["status"], current["status_reason"]) == ("CANCELLED", "payment_declined")
    saga = await shop.saga(order["id"])
    [release] = shop.sent("inventory.release", order["id"])
    assert release.data["idempotency_key"] == f"{saga['saga_id']}:release"
    assert shop.sent("payment.refund", order["id"]) == []
    assert shop.sent("order.cancelled", order["id"])[0].data["reason"] == "payment_declined"
    assert saga["status"] == "COMPENSATING"  # until inventory confirms the release
    assert ("PROCESS_PAYMENT", "FAILED") in steps(saga)

    await shop.reply(StockReleased(order_id=order["id"]))
    saga = await shop.saga(order["id"])
    assert steps(saga)[-1] == ("RELEASE_INVENTORY", "COMPLETED")
    assert saga["status"] == "FAILED"
    assert shop.sent("notification.send", order["id"]) == []


async def test_failed_payment_cancels_and_releases_stock(shop: Shop) -> None:
    order = await reserved(shop)
    await shop.reply(PaymentFailed(order_id=order["id"], reason="provider_error"))
    assert (await shop.order(order["id"]))["status_reason"] == "payment_failed"
    assert len(shop.sent("inventory.release", order["id"])) == 1
    assert len(shop.sent("order.cancelled", order["id"])) == 1


async def test_out_of_stock_cancels_without_charging(shop: Shop) -> None:
    order = await shop.place_ok()
    await shop.reply(
        StockReservationFailed(order_id=order["id"], reason="out_of_stock", product_id="p-mouse")
    )
    current = await shop.order(order["id"])
    assert (current["status"], current["status_reason"]) == ("CANCELLED", "out_of_stock")
    assert shop.sent("payment.charge", order["id"]) == []
    assert shop.sent("inventory.release", order["id"]) == []
    assert shop.sent("order.cancelled", order["id"])[0].data["reason"] == "out_of_stock"
    saga = await shop.saga(order["id"])
    assert saga["status"] == "FAILED" and saga["steps"][-1]["error"] == "out_of_stock"
    assert await _payment_token(shop, order["id"]) is None


async def test_cancelling_a_pending_order_releases_stock(shop: Shop) -> None:
    order = await shop.place_ok()
    response = await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["status_reason"]) == ("CANCELLED", "cancelled_by_user")
    await shop.settle()
    assert len(shop.sent("inventory.release", order["id"])) == 1
    assert shop.sent("payment.refund", order["id"]) == []
    assert shop.sent("order.cancelled", order["id"])[0].data["reason"] == "cancelled_by_user"
    assert await _payment_token(shop, order["id"]) is None


async def test_cancelling_a_confirmed_order_refunds_and_releases(shop: Shop) -> None:
    order = await confirmed(shop)
    response = await shop.client.post(
        f"/orders/{order['id']}/cancel", headers=shop.auth_headers("boss", "admin")
    )
    assert response.status_code == 202
    await shop.settle()
    saga_id = (await shop.saga(order["id"]))["saga_id"]
    [refund] = shop.sent("payment.refund", order["id"])
    [release] = shop.sent("inventory.release", order["id"])
    assert (refund.data["idempotency_key"], release.data["idempotency_key"]) == (
        f"{saga_id}:refund",
        f"{saga_id}:release",
    )
    refund_at = shop.bus.published.index(refund)
    assert refund_at < shop.bus.published.index(release)  # compensation runs newest step first
    assert (await shop.order(order["id"]))["status_reason"] == "cancelled_by_user"
    assert len(shop.sent("order.confirmed", order["id"])) == 1
    assert (await shop.saga(order["id"]))["status"] == "COMPENSATING"
    await shop.reply(PaymentRefunded(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert (await shop.saga(order["id"]))["status"] == "COMPENSATING"  # the release is still out
    await shop.reply(StockReleased(order_id=order["id"]))
    assert (await shop.saga(order["id"]))["status"] == "FAILED"


async def test_a_shipped_order_can_no_longer_be_cancelled(shop: Shop) -> None:
    order = await confirmed(shop)
    assert (
        await shop.client.post(f"/orders/{order['id']}/ship", headers=shop.auth_headers("u1"))
    ).status_code == 403  # admins ship
    shipped = await shop.client.post(
        f"/orders/{order['id']}/ship", headers=shop.auth_headers("boss", "admin")
    )
    assert (shipped.status_code, shipped.json()["status"]) == (202, "SHIPPED")
    refused = await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "order_not_cancellable")
    await shop.settle()
    assert shop.sent("payment.refund", order["id"]) == []
    again = await shop.client.post(f"/orders/{order['id']}/ship", headers=shop.auth_headers("boss", "admin"))
    assert again.status_code == 409


async def test_a_refund_with_nothing_captured_closes_the_step(shop: Shop) -> None:
    order = await reserved(shop)  # the charge is out: cancelling refunds in case it is captured
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    await shop.settle()
    assert len(shop.sent("payment.refund", order["id"])) == 1
    await shop.reply(PaymentRefundSkipped(order_id=order["id"], reason="nothing_captured"))
    await shop.reply(StockReleased(order_id=order["id"]))
    saga = await shop.saga(order["id"])
    assert saga["status"] == "FAILED"
    assert ("REFUND_PAYMENT", "COMPLETED") in steps(saga)


async def test_cancelling_twice_is_409_and_queues_nothing_more(shop: Shop) -> None:
    order = await shop.place_ok()
    assert (
        await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    ).status_code == 202
    await shop.settle()
    again = await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    assert again.status_code == 409
    await shop.settle()
    assert len(shop.sent("inventory.release", order["id"])) == 1
    assert len(shop.sent("order.cancelled", order["id"])) == 1


async def test_capture_after_the_user_cancelled_is_refunded(shop: Shop) -> None:
    order = await reserved(shop)
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert (await shop.order(order["id"]))["status"] == "CANCELLED"
    saga_id = (await shop.saga(order["id"]))["saga_id"]
    # The cancel refunded at once (the charge was out); the capture that overtook it refunds again.
    refunds = [e.id for e in shop.sent("payment.refund", order["id"])]
    assert refunds == [
        deterministic_id(saga_id, "refund"),
        deterministic_id(saga_id, "refund", "late-capture"),
    ]
    assert len(shop.sent("inventory.release", order["id"])) == 2  # the cancel's and the late one
    assert shop.sent("inventory.commit", order["id"]) == []

    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert len(shop.sent("payment.refund", order["id"])) == 2  # a second capture is a duplicate

    await shop.reply(PaymentRefunded(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert ("REFUND_PAYMENT", "COMPLETED") in steps(await shop.saga(order["id"]))


async def test_reservation_after_the_user_cancelled_is_released(shop: Shop) -> None:
    order = await shop.place_ok()
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    await shop.reply(StockReserved(order_id=order["id"]))
    saga_id = (await shop.saga(order["id"]))["saga_id"]
    ids = [e.id for e in shop.sent("inventory.release", order["id"])]
    assert ids == [deterministic_id(saga_id, "release"), deterministic_id(saga_id, "release", "late-reserve")]
    assert shop.sent("payment.charge", order["id"]) == []


async def test_redelivered_reply_changes_nothing(shop: Shop) -> None:
    order = await shop.place_ok()
    reserved = StockReserved(order_id=order["id"])
    await shop.reply(reserved, event_id="reply-1")
    await shop.reply(reserved, event_id="reply-1")  # the same envelope: the inbox drops it
    await shop.reply(reserved, event_id="reply-2")  # inventory answered twice: the saga drops it
    assert len(shop.sent("payment.charge", order["id"])) == 1
    await shop.reply(PaymentDeclined(order_id=order["id"], reason="no"))
    await shop.reply(PaymentDeclined(order_id=order["id"], reason="no"))
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert (await shop.order(order["id"]))["status_reason"] == "payment_declined"
    assert len(shop.sent("inventory.release", order["id"])) == 1
    assert len(shop.sent("order.cancelled", order["id"])) == 1


async def test_reply_for_an_unknown_order_is_dropped(shop: Shop) -> None:
    await shop.reply(StockReserved(order_id="no-such-order"))
    assert shop.sent("payment.charge", "no-such-order") == []
