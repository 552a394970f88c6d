"""Saga deadlines and recovery: timeouts compensate, paid steps are resent, failed compensations alert."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import (
    NotificationFailed,
    NotificationSent,
    PaymentRefunded,
    PaymentRefundFailed,
    ShippingQuoteRequest,
    StockCommitted,
    StockReleased,
)
from msashop.services.order.config import OrderSettings
from msashop.services.order.handlers.recovery import recover_overdue_sagas
from msashop.services.order.main import create_service
from tests.service_harness import running

from .conftest import FakeProducts, FakeShipping, Shop, confirmed, reserved, steps

LATER = timedelta(seconds=301)  # past the default 300 s step deadline


async def _recover(shop: Shop, after: timedelta = LATER) -> int:
    orchestrator = shop.service.app.state.orchestrator
    acted = await recover_overdue_sagas(
        shop.service.unit_of_work, orchestrator, now=datetime.now(UTC) + after
    )
    await shop.settle()
    return acted


async def test_a_step_past_its_deadline_compensates_a_pending_order(shop: Shop) -> None:
    waiting_for_payment = await reserved(shop)
    assert await _recover(shop, timedelta(seconds=299)) == 0
    assert await _recover(shop) == 1
    order_id = waiting_for_payment["id"]
    current = await shop.order(order_id)
    assert (current["status"], current["status_reason"]) == ("CANCELLED", "timeout")
    # The charge was out: its capture may still come, so the refund is queued with the release.
    assert len(shop.sent("payment.refund", order_id)) == 1
    assert len(shop.sent("inventory.release", order_id)) == 1
    assert (await shop.saga(order_id))["status"] == "COMPENSATING"
    await shop.reply(PaymentRefunded(order_id=order_id, payment_id="pay-1", amount=44.48))
    await shop.reply(StockReleased(order_id=order_id))
    assert (await shop.saga(order_id))["status"] == "FAILED"
    assert await _recover(shop) == 0


async def test_a_saga_before_any_charge_only_releases(shop: Shop) -> None:
    order = await shop.place_ok()
    assert await _recover(shop) == 1
    assert shop.sent("payment.refund", order["id"]) == []
    assert len(shop.sent("inventory.release", order["id"])) == 1


async def test_a_paid_order_is_never_cancelled_by_a_deadline_its_steps_are_resent(shop: Shop) -> None:
    order = await confirmed(shop)
    await shop.reply(StockCommitted(order_id=order["id"]))
    assert await _recover(shop) == 1
    assert (await shop.order(order["id"]))["status"] == "CONFIRMED"
    saga = await shop.saga(order["id"])
    notifications = shop.sent("notification.send", order["id"])
    assert [e.id for e in notifications] == [
        deterministic_id(saga["saga_id"], "notify"),
        deterministic_id(saga["saga_id"], "notify", "attempt", "2"),
    ]
    # A new envelope (the bus delivers it again), the same key (the receiver sends once).
    assert {e.data["idempotency_key"] for e in notifications} == {f"{saga['saga_id']}:notify"}
    assert len(shop.sent("inventory.commit", order["id"])) == 1  # already answered: not resent
    assert steps(saga)[-2:] == [("SEND_NOTIFICATION", "FAILED"), ("SEND_NOTIFICATION", "RUNNING")]
    await shop.reply(NotificationSent(order_id=order["id"], notification_id="n-1", delivered_via="recorded"))
    assert (await shop.saga(order["id"]))["status"] == "COMPLETED"


async def test_a_failed_notification_is_retried_later_and_never_cancels(shop: Shop) -> None:
    order = await confirmed(shop)
    await shop.reply(StockCommitted(order_id=order["id"]))
    await shop.reply(NotificationFailed(order_id=order["id"], reason="SMTPServerDisconnected"))
    saga = await shop.saga(order["id"])
    assert (saga["status"], saga["current_step"]) == ("RUNNING", "SEND_NOTIFICATION")
    assert saga["steps"][-1]["error"] == "SMTPServerDisconnected"
    assert (await shop.order(order["id"]))["status"] == "CONFIRMED"
    # Tried again after the retry delay (5 s for the first failure), not at the step timeout.
    assert await _recover(shop, timedelta(seconds=4)) == 0
    assert await _recover(shop, timedelta(seconds=6)) == 1
    assert len(shop.sent("notification.send", order["id"])) == 2
    await shop.reply(NotificationFailed(order_id=order["id"], reason="SMTPServerDisconnected"))
    deadline = datetime.fromisoformat((await shop.saga(order["id"]))["deadline_at"])
    assert timedelta(seconds=9) < deadline - datetime.now(UTC) <= timedelta(seconds=10)  # doubled
    assert await _recover(shop, timedelta(seconds=11)) == 1
    await shop.reply(NotificationSent(order_id=order["id"], notification_id="n-1", delivered_via="recorded"))
    saga = await shop.saga(order["id"])
    assert saga["status"] == "COMPLETED"
    assert [s["status"] for s in saga["steps"] if s["name"] == "SEND_NOTIFICATION"] == [
        "FAILED",
        "FAILED",
        "COMPLETED",
    ]


def _alerts(step: str) -> float:
    return REGISTRY.get_sample_value("saga_compensation_failures_total", {"step": step}) or 0.0


async def test_a_refused_refund_fails_the_compensation_and_alerts_admins(shop: Shop) -> None:
    order = await confirmed(shop)
    before = _alerts("REFUND_PAYMENT")
    cancel = await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    assert cancel.status_code == 202
    await shop.reply(PaymentRefundFailed(order_id=order["id"], payment_id="pay-1", reason="provider_error"))
    saga = await shop.saga(order["id"])
    assert (saga["status"], saga["current_step"]) == ("COMPENSATION_FAILED", "REFUND_PAYMENT")
    assert ("REFUND_PAYMENT", "FAILED") in steps(saga)
    [alert] = shop.sent("order.compensation_failed", order["id"])
    assert alert.data == {
        "order_id": order["id"],
        "saga_id": saga["saga_id"],
        "step": "REFUND_PAYMENT",
        "reason": "refund failed: provider_error",
    }
    assert _alerts("REFUND_PAYMENT") == before + 1
    # It stays for an operator: recovery leaves it alone, the order stays cancelled.
    assert await _recover(shop) == 0
    assert (await shop.order(order["id"]))["status"] == "CANCELLED"


async def test_an_unanswered_compensation_is_resent_then_alerts(shop: Shop) -> None:
    order = await confirmed(shop)
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u1"))
    await shop.settle()
    await shop.reply(StockReleased(order_id=order["id"]))  # the release answers, the refund never does
    assert await _recover(shop) == 1
    assert await _recover(shop, LATER * 2) == 1
    refunds = shop.sent("payment.refund", order["id"])
    assert len(refunds) == 3 and len({e.id for e in refunds}) == 3
    assert len({e.data["idempotency_key"] for e in refunds}) == 1
    assert (await shop.saga(order["id"]))["status"] == "COMPENSATING"
    assert await _recover(shop, LATER * 3) == 1  # the third send went unanswered too
    saga = await shop.saga(order["id"])
    assert saga["status"] == "COMPENSATION_FAILED"
    [alert] = shop.sent("order.compensation_failed", order["id"])
    assert alert.data["reason"] == "no answer after 3 attempts"
    assert len(shop.sent("payment.refund", order["id"])) == 3


@pytest.fixture
def quick_settings(settings: OrderSettings) -> OrderSettings:
    return settings.model_copy(update={"saga_timeout_seconds": 0.2})


async def test_recovery_runs_at_start_for_sagas_a_stop_left_overdue(
    quick_settings: OrderSettings, products: FakeProducts
) -> None:
    async def shop() -> AsyncIterator[Shop]:
        bus = InMemoryBus()
        await bus.respond(ShippingQuoteRequest.subject, FakeShipping().calculate)
        async with running(create_service(quick_settings, bus=bus), harness=Shop) as harness:
            yield harness

    async for first in shop():
        order = await first.place_ok()
    # Down for longer than the step deadline; the periodic sweep is hours away (conftest).
    import asyncio

    await asyncio.sleep(0.3)
    async for second in shop():
        current = await second.order(order["id"])
        assert (current["status"], current["status_reason"]) == ("CANCELLED", "timeout")
