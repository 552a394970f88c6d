"""Charge and refund on PostgreSQL: Numeric amounts and the one-payment-per-order constraint."""

from decimal import Decimal
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import ChargePayment, RefundPayment
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service
from tests.service_harness import running

pytestmark = pytest.mark.postgres


async def test_charge_twice_and_refund_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    service = create_service(
        PaymentSettings.load("payment", data_dir=tmp_path, database_url=postgres_url), bus=InMemoryBus()
    )
    async with running(service) as app:
        charge = ChargePayment(
            order_id="o1",
            user_id="u1",
            amount=Decimal("19.99"),
            currency="USD",
            token="tok_visa",
            idempotency_key="s:charge",
        )
        await app.deliver(charge, event_id="c1")
        await app.deliver(charge, event_id="c2")
        await app.deliver(RefundPayment(order_id="o1", idempotency_key="s:refund"))
        found = (
            await app.client.get("/payments", params={"order_id": "o1"}, headers=app.auth_headers("u1"))
        ).json()
        replies = [r.type for r in await app.outbox_events()]
    assert [(p["status"], p["amount"], p["refunded_amount"]) for p in found] == [("REFUNDED", 19.99, 19.99)]
    assert replies == ["payment.captured", "payment.captured", "payment.refunded"]
