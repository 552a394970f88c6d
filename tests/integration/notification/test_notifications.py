"""Notifications from user and order events, once each, and the caller's list."""

import asyncio
from decimal import Decimal

from msashop.contracts.events import OrderCancelled, SendNotification, UserRegistered
from msashop.services.notification.domain import DeliveredVia, Email
from tests.conftest import free_port
from tests.integration.notification.conftest import Factory, NotificationApp

ADA = UserRegistered(user_id="u1", email="ada@example.com", name="Ada")


def _confirmed(order_id: str = "o1", user_id: str = "u1") -> SendNotification:
    """The order saga's last step for a confirmed order."""
    return SendNotification(
        order_id=order_id,
        user_id=user_id,
        type="order_confirmed",
        total=Decimal("42.50"),
        currency="USD",
        idempotency_key=f"saga-{order_id}:notify",
    )


async def test_registration_records_a_welcome_once(notification: NotificationApp) -> None:
    await notification.deliver(ADA, event_id="reg-1")
    await notification.deliver(ADA, event_id="reg-1")  # redelivered: the inbox skips it
    await notification.deliver(ADA, event_id="reg-2")  # published again: still one welcome
    [welcome] = await notification.listed("u1")
    assert welcome["type"] == "welcome" and welcome["order_id"] is None and "Ada" in welcome["message"]


async def test_order_outcomes_are_listed_newest_first(notification: NotificationApp) -> None:
    await notification.deliver(ADA)
    await notification.deliver(_confirmed())
    await notification.deliver(OrderCancelled(order_id="o1", user_id="u1", reason="cancelled_by_user"))
    listed = await notification.listed("u1")
    assert [(n["type"], n["order_id"]) for n in listed] == [
        ("order_cancelled", "o1"),
        ("order_confirmed", "o1"),
        ("welcome", None),
    ]
    assert "cancelled_by_user" in listed[0]["message"]
    assert listed[0]["created_at"].endswith(("Z", "+00:00"))
    assert set(listed[0]) == {"id", "type", "order_id", "message", "created_at"}


async def test_an_order_command_resent_notifies_once(notification: NotificationApp) -> None:
    await notification.deliver(_confirmed(), event_id="e1")
    await notification.deliver(_confirmed(), event_id="e2")
    assert [n["type"] for n in await notification.listed("u1")] == ["order_confirmed"]


async def test_users_see_only_their_own_notifications(notification: NotificationApp) -> None:
    await notification.deliver(_confirmed())
    assert await notification.listed("someone-else") == []
    assert (await notification.client.get("/notifications")).status_code == 401


class Outbox:
    """A sender that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> DeliveredVia:
        self.sent.append(email)
        return DeliveredVia.EMAIL


async def test_known_users_are_emailed(start_notification: Factory) -> None:
    outbox = Outbox()
    app = await start_notification(sender=outbox)
    await app.deliver(ADA)
    await app.deliver(_confirmed())
    assert [(e.to, e.subject) for e in outbox.sent] == [
        ("ada@example.com", "Welcome to msashop"),
        ("ada@example.com", "Your order is confirmed"),
    ]
    assert await app.delivered_via() == [("order_confirmed", "email"), ("welcome", "email")]


async def test_unknown_user_is_recorded_without_email(start_notification: Factory) -> None:
    outbox = Outbox()
    app = await start_notification(sender=outbox)
    await app.deliver(_confirmed())
    assert outbox.sent == []
    assert await app.delivered_via() == [("order_confirmed", "recorded")]


async def test_a_mail_server_that_is_down_loses_no_event_notification(start_notification: Factory) -> None:
    app = await start_notification(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout_seconds=2)
    await app.deliver(ADA)
    await app.deliver(OrderCancelled(order_id="o1", user_id="u1", reason="payment_declined"))
    assert await app.delivered_via() == [("order_cancelled", "recorded"), ("welcome", "recorded")]
    # The saga's command is answered instead, and nothing is recorded: its resend may succeed.
    await app.deliver(_confirmed("o2"))
    assert [(r.type, r.data["reason"]) for r in await app.outbox_events()] == [
        ("notification.failed", "SMTPConnectError")
    ]
    assert len(await app.listed("u1")) == 2


async def test_smtp_sender_delivers_to_a_mail_server(start_notification: Factory) -> None:
    received: list[str] = []

    async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Just enough SMTP for one message (no STARTTLS, no AUTH)."""
        writer.write(b"220 fake ESMTP\r\n")
        while line := (await reader.readline()).decode():
            verb = line[:4].upper()
            if verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                received.append((await reader.readuntil(b"\r\n.\r\n")).decode())
                writer.write(b"250 queued\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(smtp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        app = await start_notification(smtp_host="127.0.0.1", smtp_port=port)
        await app.deliver(ADA)
    assert await app.delivered_via() == [("welcome", "email")]
    assert "To: ada@example.com" in received[0] and "Hello Ada," in received[0]
