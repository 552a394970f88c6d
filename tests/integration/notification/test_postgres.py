"""Migrations and the duplicate guards on PostgreSQL (partial unique indexes are per dialect)."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from msashop.contracts.events import OrderConfirmed, UserRegistered
from msashop.services.notification.db import notifications
from msashop.services.notification.domain import NotificationType
from tests.integration.notification.conftest import Factory

pytestmark = pytest.mark.postgres


async def test_duplicates_cannot_be_stored_on_postgres(
    start_notification: Factory, postgres_url: str
) -> None:
    app = await start_notification(database_url=postgres_url)
    await app.deliver(UserRegistered(user_id="u1", email="a@example.com", name="A"))
    confirmed = OrderConfirmed(order_id="o1", user_id="u1", total=Decimal("1.00"), currency="USD")
    await app.deliver(confirmed, event_id="e1")
    await app.deliver(confirmed, event_id="e2")
    assert [n["type"] for n in await app.listed("u1")] == ["order_confirmed", "welcome"]
    for order_id, type_ in (("o1", NotificationType.ORDER_CONFIRMED), (None, NotificationType.WELCOME)):
        async with app.service.unit_of_work() as uow:
            with pytest.raises(sa.exc.IntegrityError):
                await uow.session.execute(
                    sa.insert(notifications).values(
                        id=f"dup-{type_}",
                        user_id="u1",
                        type=type_.value,
                        order_id=order_id,
                        message="m",
                        created_at=sa.func.now(),
                        delivered_via="recorded",
                    )
                )
