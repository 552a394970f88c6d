"""GET /payments: an order's payments for its owner or an admin, nothing for anyone else."""

from decimal import Decimal

from msashop.contracts.events import ChargePayment
from tests.service_harness import ServiceHarness


async def _paid(payment: ServiceHarness, order_id: str, user_id: str) -> None:
    await payment.deliver(
        ChargePayment(
            order_id=order_id,
            user_id=user_id,
            amount=Decimal("5.00"),
            currency="USD",
            token="tok_visa",
            idempotency_key="k",
        )
    )


async def test_owner_and_admin_see_the_payment(payment: ServiceHarness) -> None:
    await _paid(payment, "o1", "owner")
    for headers in (payment.auth_headers("owner"), payment.auth_headers("admin-1", "admin")):
        found = (await payment.client.get("/payments", params={"order_id": "o1"}, headers=headers)).json()
        assert [(p["order_id"], p["status"], p["currency"]) for p in found] == [("o1", "CAPTURED", "USD")]
        assert set(found[0]) == {"id", "order_id", "amount", "currency", "status", "refunded_amount"}


async def test_someone_elses_payment_is_never_revealed(payment: ServiceHarness) -> None:
    await _paid(payment, "o1", "owner")
    response = await payment.client.get(
        "/payments", params={"order_id": "o1"}, headers=payment.auth_headers("intruder")
    )
    assert response.status_code == 200 and response.json() == []


async def test_order_id_is_required_and_a_token_too(payment: ServiceHarness) -> None:
    response = await payment.client.get("/payments", headers=payment.auth_headers("owner"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert (await payment.client.get("/payments", params={"order_id": "o1"})).status_code == 401
