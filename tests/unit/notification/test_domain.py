from decimal import Decimal

import pytest
from pydantic import ValidationError

from msashop.services.notification import domain
from msashop.services.notification.config import NotificationSettings
from msashop.services.notification.domain import DeliveredVia, NotificationType, Recipient
from msashop.services.notification.sender import RecordingSender


def test_order_notifications_carry_their_type_and_order() -> None:
    confirmed = domain.order_confirmed("o1", Decimal("42.5"), "USD")
    assert (confirmed.type, confirmed.order_id) == (NotificationType.ORDER_CONFIRMED, "o1")
    assert "o1" in confirmed.message and "42.50 USD" in confirmed.message


def test_cancellation_message_says_why() -> None:
    cancelled = domain.order_cancelled("o1", "payment_declined")
    assert cancelled.type is NotificationType.ORDER_CANCELLED
    assert "payment_declined" in cancelled.message


def test_welcome_has_no_order_and_greets_by_name() -> None:
    draft = domain.welcome("Ada")
    assert draft.type is NotificationType.WELCOME and draft.order_id is None
    email = draft.email_to(Recipient(user_id="u1", email="ada@example.com", name="Ada"))
    assert email.to == "ada@example.com" and email.subject == "Welcome to msashop"
    assert email.body.startswith("Hello Ada,")


async def test_recording_sender_only_records() -> None:
    email = domain.welcome("Ada").email_to(Recipient("u1", "ada@example.com", "Ada"))
    assert await RecordingSender().send(email) is DeliveredVia.RECORDED


def test_production_refuses_a_mail_server_without_password() -> None:
    with pytest.raises(ValidationError, match="smtp_password"):
        NotificationSettings(env="production", smtp_host="mail.example.com")
    NotificationSettings(env="production")  # no mail server: fine
    NotificationSettings(env="production", smtp_host="mail.example.com", smtp_password="pw")


def test_admin_alert_names_the_order_step_and_reason() -> None:
    alert = domain.admin_alert("o1", "saga-1", "refundPayment", "provider_error")
    assert (alert.type, alert.order_id) == (NotificationType.ADMIN_ALERT, "o1")
    assert all(part in alert.message for part in ("o1", "saga-1", "refundPayment", "provider_error"))
    email = alert.email_to_admins("ops@example.com")
    assert email.to == "ops@example.com" and "o1" in email.subject
    assert email.body.startswith(alert.message)


def test_the_admin_address_is_an_optional_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotificationSettings.load("notification").admin_email == ""
    monkeypatch.setenv("MSASHOP_NOTIFICATION_ADMIN_EMAIL", "ops@example.com")
    assert NotificationSettings.load("notification").admin_email == "ops@example.com"
