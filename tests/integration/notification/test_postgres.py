"""Migrations and the duplicate guards on PostgreSQL (partial unique indexes are per dialect)."""

import pytest
import sqlalchemy as sa

from msashop.contracts.events import SagaCompensationFailed, UserRegistered
from msashop.services.notification.db import notifications
from msashop.services.notification.domain import NotificationType
from tests.integration.notification.conftest import Factory
from tests.integration.notification.test_notifications import _confirmed

pytestmark = pytest.mark.postgres


async def test_duplicates_cannot_be_stored_on_postgres(
    start_notification: Factory, postgres_url: str
) -> None:
    app = await start_notification(database_url=postgres_url)
    await app.deliver(UserRegistered(user_id="u1", email="a@example.com", name="A"))
    await app.deliver(_confirmed(), event_id="e1")
    await app.deliver(_confirmed(), event_id="e2")
    assert [n["type"] for n in await app.listed("u1")] == ["order_confirmed", "welcome"]
    for step in ("refundPayment", "refundPayment", "releaseItems"):
        await app.deliver(SagaCompensationFailed(order_id="o1", saga_id="s1", step=step, reason="x"))
    admin_alerts = [n for n in await app.listed("admin", "admin") if n["type"] == "admin_alert"]
    assert len(admin_alerts) == 2
    duplicates = [
        ("u1", "o1", NotificationType.ORDER_CONFIRMED, "user", None),
        ("u1", None, NotificationType.WELCOME, "user", None),
        ("admins", "o1", NotificationType.ADMIN_ALERT, "admins", "refundPayment"),
    ]
    for user_id, order_id, type_, audience, step in duplicates:
        async with app.service.unit_of_work() as uow:
            with pytest.raises(sa.exc.IntegrityError):
                await uow.session.execute(
                    sa.insert(notifications).values(
                        id=f"dup-{type_}",
                        user_id=user_id,
                        type=type_.value,
                        order_id=order_id,
                        message="m",
                        created_at=sa.func.now(),
                        delivered_via="recorded",
                        audience=audience,
                        step=step,
                    )
                )
