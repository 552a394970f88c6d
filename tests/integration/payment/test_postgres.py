"""Charge and refund on PostgreSQL: Numeric amounts and the one-payment-per-order constraint."""

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.signing import SigningKey
from msashop.contracts.events import ChargePayment, RefundPayment
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service
from tests.integration.payment.conftest import PaymentApp

pytestmark = pytest.mark.postgres


async def test_charge_twice_and_refund_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    service = create_service(
        PaymentSettings.load("payment", data_dir=tmp_path, database_url=postgres_url), bus=InMemoryBus()
    )
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment") as client:
            app = PaymentApp(service, client, key)
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
            found = (await client.get("/payments", params={"order_id": "o1"}, headers=app.auth("u1"))).json()
            replies = [r.type for r in await app.replies()]
    assert [(p["status"], p["amount"], p["refunded_amount"]) for p in found] == [("REFUNDED", 19.99, 19.99)]
    assert replies == ["payment.captured", "payment.captured", "payment.refunded"]
