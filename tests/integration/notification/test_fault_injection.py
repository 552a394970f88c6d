"""The fault file (tests of the dead-letter queue): listed users' order notifications fail until
the file is removed; nothing else changes, and production refuses the setting."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from msashop.contracts.envelope import wrap
from msashop.contracts.events import SendNotification, UserRegistered
from msashop.services.notification.config import NotificationSettings
from tests.integration.notification.conftest import Factory
from tests.integration.notification.test_notifications import _confirmed


async def test_a_listed_users_order_notification_is_dead_lettered_then_replayed_once(
    start_notification: Factory, tmp_path: Path
) -> None:
    faults = tmp_path / "faults"
    faults.write_text("u1\n")
    app = await start_notification(fault_file=faults, bus_max_attempts=3)
    await app.deliver(UserRegistered(user_id="u1", email="ada@example.com", name="Ada"))
    await app.bus.publish(wrap(_confirmed(), source="order", key="o1"))
    await app.bus.publish(wrap(_confirmed("o2", user_id="u2"), source="order", key="o2"))

    admin = app.auth_headers("admin", "admin")
    [letter] = (await app.client.get("/admin/dlq", headers=admin)).json()
    assert (letter["subject"], letter["attempts"]) == (SendNotification.subject, 3)
    assert letter["reason"].startswith("InjectedFault: injected fault for user u1")
    assert [n["type"] for n in await app.listed("u1")] == ["welcome"]
    assert [n["order_id"] for n in await app.listed("u2")] == ["o2"]

    faults.unlink()  # the fix
    assert (await app.client.post("/admin/dlq/replay", headers=admin)).json()["replayed"] == 1
    assert [n["type"] for n in await app.listed("u1")] == ["order_confirmed", "welcome"]
    assert (await app.client.get("/admin/dlq", headers=admin)).json() == []
    # Only u2's command was answered before the replay; the replayed one is answered now.
    replies = await app.outbox_events()
    assert [(r.type, r.key) for r in replies] == [("notification.sent", "o2"), ("notification.sent", "o1")]


def test_production_refuses_the_fault_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="production refuses it"):
        NotificationSettings.load("notification", env="production", fault_file=tmp_path / "faults")
