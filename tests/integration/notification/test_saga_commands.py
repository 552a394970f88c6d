"""The order saga's `notification.send` (answered, once per order, resendable) and the admin alert
when a saga could not compensate (`order.compensation_failed`)."""

from collections.abc import Callable
from decimal import Decimal

import pytest

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import OrderConfirmed, SagaCompensationFailed
from msashop.services.notification import handlers
from msashop.services.notification.domain import DeliveredVia, Email
from tests.integration.notification.conftest import Factory, NotificationApp
from tests.integration.notification.test_notifications import ADA, Outbox, _confirmed


class FlakySender:
    """Raises `error` until it is cleared, then keeps what it sends."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.sent: list[Email] = []

    async def send(self, email: Email) -> DeliveredVia:
        if self.error is not None:
            raise self.error
        self.sent.append(email)
        return DeliveredVia.EMAIL


class RecordingLog:
    """Stands in for the handlers' structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        """Any level method: log.info, log.warning, log.error, ..."""

        def write(event: str, **fields: object) -> None:
            self.lines.append((level, event, fields))

        return write


def _failed(order_id: str = "o1", step: str = "refundPayment") -> SagaCompensationFailed:
    return SagaCompensationFailed(
        order_id=order_id, saga_id=f"saga-{order_id}", step=step, reason="provider_error"
    )


# --- notification.send ----------------------------------------------------------------------
async def test_send_records_the_confirmation_and_answers_sent(notification: NotificationApp) -> None:
    command = await notification.deliver(_confirmed(), source="order")
    [listed] = await notification.listed("u1")
    assert (listed["type"], listed["order_id"]) == ("order_confirmed", "o1")
    assert "42.50 USD" in listed["message"]
    [reply] = await notification.outbox_events()
    assert (reply.type, reply.key, reply.source) == ("notification.sent", "o1", "notification")
    assert reply.data == {"order_id": "o1", "notification_id": listed["id"], "delivered_via": "recorded"}
    assert reply.causation_id == command.id
    assert reply.id == deterministic_id("notification", command.id, "notification.sent")


async def test_a_resent_command_answers_sent_again_with_the_same_notification(
    start_notification: Factory,
) -> None:
    outbox = Outbox()
    app = await start_notification(sender=outbox)
    await app.deliver(ADA)
    await app.deliver(_confirmed(), event_id="send-1")
    await app.deliver(_confirmed(), event_id="send-1")  # redelivered: the inbox skips it
    await app.deliver(_confirmed(), event_id="send-2")  # resent after a step timeout
    [listed] = [n for n in await app.listed("u1") if n["type"] == "order_confirmed"]
    replies = await app.outbox_events()
    assert [(r.type, r.data["notification_id"], r.data["delivered_via"]) for r in replies] == 2 * [
        ("notification.sent", listed["id"], "email")
    ]
    assert len({r.id for r in replies}) == 2
    assert [e.subject for e in outbox.sent] == ["Welcome to msashop", "Your order is confirmed"]


async def test_a_failed_send_records_nothing_and_a_resend_can_succeed(start_notification: Factory) -> None:
    sender = FlakySender(ConnectionRefusedError("mail server down"))
    app = await start_notification(sender=sender)
    await app.deliver(ADA)
    await app.deliver(_confirmed(), event_id="send-1")
    assert [n["type"] for n in await app.listed("u1")] == ["welcome"]  # an event's mail failing loses nothing
    sender.error = None
    await app.deliver(_confirmed(), event_id="send-2")
    listed = await app.listed("u1")
    [confirmed] = [n for n in listed if n["type"] == "order_confirmed"]
    replies = await app.outbox_events()
    assert [(r.type, r.data) for r in replies] == [
        ("notification.failed", {"order_id": "o1", "reason": "ConnectionRefusedError"}),
        (
            "notification.sent",
            {"order_id": "o1", "notification_id": confirmed["id"], "delivered_via": "email"},
        ),
    ]
    assert [e.subject for e in sender.sent] == ["Your order is confirmed"]


async def test_an_unknown_notification_type_is_answered_failed(notification: NotificationApp) -> None:
    await notification.deliver(_confirmed().model_copy(update={"type": "birthday"}))
    [reply] = await notification.outbox_events()
    assert (reply.type, reply.data["reason"]) == ("notification.failed", "unknown_type")
    assert await notification.listed("u1") == []


async def test_order_confirmed_events_no_longer_make_a_notification(notification: NotificationApp) -> None:
    # The saga's notification.send is the one confirmation; a second consumer would make two.
    await notification.deliver(
        OrderConfirmed(order_id="o1", user_id="u1", total=Decimal("42.50"), currency="USD")
    )
    assert await notification.listed("u1") == []


# --- order.compensation_failed --------------------------------------------------------------
async def test_every_admin_sees_an_alert_once_per_order_and_step(notification: NotificationApp) -> None:
    await notification.deliver(_confirmed(user_id="admin-1"))  # an admin's own notification
    await notification.deliver(_failed(step="refundPayment"), event_id="alert-1")
    await notification.deliver(_failed(step="refundPayment"), event_id="alert-2")  # published again
    await notification.deliver(_failed(step="releaseItems"))
    for admin in ("admin-1", "admin-2"):
        listed = await notification.listed(admin, "admin")
        alerts = [n for n in listed if n["type"] == "admin_alert"]
        assert sorted("releaseItems" in a["message"] for a in alerts) == [False, True]
        assert all(a["order_id"] == "o1" and "provider_error" in a["message"] for a in alerts)
    assert [n["type"] for n in await notification.listed("admin-1", "admin")].count("order_confirmed") == 1
    assert [n["type"] for n in await notification.listed("admin-2", "admin")].count("order_confirmed") == 0
    assert await notification.listed("u1") == []  # customers never see admin alerts
    assert [r.type for r in await notification.outbox_events()] == [
        "notification.sent"
    ]  # alerts answer nothing


async def test_the_alert_is_logged_at_error_level_once(
    notification: NotificationApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr(handlers, "log", log)
    await notification.deliver(_failed(), event_id="alert-1")
    await notification.deliver(_failed(), event_id="alert-2")
    errors = [(event, fields) for level, event, fields in log.lines if level == "error"]
    assert errors == [
        (
            "notification.admin_alert",
            {"order_id": "o1", "saga_id": "saga-o1", "step": "refundPayment", "reason": "provider_error"},
        )
    ]


async def test_the_alert_is_emailed_to_the_admin_address(start_notification: Factory) -> None:
    outbox = Outbox()
    app = await start_notification(sender=outbox, admin_email="ops@example.com")
    await app.deliver(_failed())
    await app.deliver(_failed())
    [email] = outbox.sent
    assert email.to == "ops@example.com" and "o1" in email.subject
    assert "refundPayment" in email.body and "provider_error" in email.body
    assert await app.delivered_via() == [("admin_alert", "email")]


async def test_without_an_admin_address_the_alert_is_recorded_only(start_notification: Factory) -> None:
    outbox = Outbox()
    app = await start_notification(sender=outbox)
    await app.deliver(_failed())
    assert outbox.sent == []
    assert await app.delivered_via() == [("admin_alert", "recorded")]


async def test_a_mail_outage_loses_no_alert(start_notification: Factory) -> None:
    app = await start_notification(
        sender=FlakySender(ConnectionRefusedError()), admin_email="ops@example.com"
    )
    await app.deliver(_failed())
    assert await app.delivered_via() == [("admin_alert", "recorded")]
    assert len(await app.listed("admin-1", "admin")) == 1
