"""The checkout saga driven by the replies inventory and payment publish on the bus."""

from datetime import UTC, datetime, timedelta
from typing import Any

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import (
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    PaymentRefunded,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.order.db import SagaRepository
from msashop.services.order.handlers.saga import expire_overdue_sagas

from .conftest import Shop


async def _payment_token(shop: Shop, order_id: str) -> str | None:
    async with shop.service.unit_of_work() as uow:
        saga = await SagaRepository(uow.session).for_order(order_id)
    assert saga is not None
    return saga.payment_token


def _steps(saga: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["name"], s["status"]) for s in saga["steps"]]


async def _reserved(shop: Shop) -> dict[str, Any]:
    """An order whose stock is reserved and whose charge is on its way."""
    order = await shop.place_ok()
    await shop.reply(StockReserved(order_id=order["id"]))
    return order


async def _confirmed(shop: Shop) -> dict[str, Any]:
    order = await _reserved(shop)
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    return order


async def test_happy_path_reserves_charges_commits_and_confirms(shop: Shop) -> None:
    order = await _reserved(shop)
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

    await shop.reply(StockCommitted(order_id=order["id"]))
    saga = await shop.saga(order["id"])
    assert saga["status"] == "COMPLETED"
    assert _steps(saga) == [
        ("CREATE_ORDER", "COMPLETED"),
        ("RESERVE_INVENTORY", "COMPLETED"),
        ("PROCESS_PAYMENT", "COMPLETED"),
        ("COMMIT_INVENTORY", "COMPLETED"),
    ]
    assert all(s["finished_at"] for s in saga["steps"])


async def test_declined_payment_cancels_and_releases_stock(shop: Shop) -> None:
    order = await _reserved(shop)
    await shop.reply(PaymentDeclined(order_id=order["id"], reason="card_declined"))
    current = await shop.order(order["id"])
    assert (current["status"], current["status_reason"]) == ("CANCELLED", "payment_declined")
    saga = await shop.saga(order["id"])
    [release] = shop.sent("inventory.release", order["id"])
    assert release.data["idempotency_key"] == f"{saga['saga_id']}:release"
    assert shop.sent("payment.refund", order["id"]) == []
    assert shop.sent("order.cancelled", order["id"])[0].data["reason"] == "payment_declined"
    assert saga["status"] == "FAILED"
    assert ("PROCESS_PAYMENT", "FAILED") in _steps(saga)

    await shop.reply(StockReleased(order_id=order["id"]))
    assert _steps(await shop.saga(order["id"]))[-1] == ("RELEASE_INVENTORY", "COMPLETED")


async def test_failed_payment_cancels_and_releases_stock(shop: Shop) -> None:
    order = await _reserved(shop)
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
    order = await _confirmed(shop)
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
    order = await _reserved(shop)
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert (await shop.order(order["id"]))["status"] == "CANCELLED"
    saga_id = (await shop.saga(order["id"]))["saga_id"]
    [refund] = shop.sent("payment.refund", order["id"])
    assert refund.id == deterministic_id(saga_id, "refund", "late-capture")
    assert len(shop.sent("inventory.release", order["id"])) == 2  # the cancel's and the late one
    assert shop.sent("inventory.commit", order["id"]) == []

    await shop.reply(PaymentCaptured(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert len(shop.sent("payment.refund", order["id"])) == 1  # a second capture is a duplicate

    await shop.reply(PaymentRefunded(order_id=order["id"], payment_id="pay-1", amount=44.48))
    assert ("REFUND_PAYMENT", "COMPLETED") in _steps(await shop.saga(order["id"]))


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


async def test_overdue_saga_is_cancelled_with_refund_and_release(shop: Shop) -> None:
    waiting_for_payment = await _reserved(shop)
    confirmed = await _confirmed(shop)
    in_time = datetime.now(UTC) + timedelta(seconds=299)
    assert await expire_overdue_sagas(shop.service.unit_of_work, now=in_time) == 0

    overdue = datetime.now(UTC) + timedelta(seconds=301)
    assert await expire_overdue_sagas(shop.service.unit_of_work, now=overdue) == 1
    await shop.settle()
    current = await shop.order(waiting_for_payment["id"])
    assert (current["status"], current["status_reason"]) == ("CANCELLED", "timeout")
    assert len(shop.sent("payment.refund", waiting_for_payment["id"])) == 1
    assert len(shop.sent("inventory.release", waiting_for_payment["id"])) == 1
    assert shop.sent("order.cancelled", waiting_for_payment["id"])[0].data["reason"] == "timeout"
    assert (await shop.saga(waiting_for_payment["id"]))["status"] == "FAILED"
    assert (await shop.order(confirmed["id"]))["status"] == "CONFIRMED"

    assert await expire_overdue_sagas(shop.service.unit_of_work, now=overdue) == 0


async def test_overdue_saga_before_any_charge_only_releases(shop: Shop) -> None:
    order = await shop.place_ok()
    overdue = datetime.now(UTC) + timedelta(seconds=301)
    assert await expire_overdue_sagas(shop.service.unit_of_work, now=overdue) == 1
    await shop.settle()
    assert shop.sent("payment.refund", order["id"]) == []
    assert len(shop.sent("inventory.release", order["id"])) == 1
