"""The provider is asked outside the unit of work: slow charges of different orders overlap, a
recorded charge is not asked again, and a refund that raced a charge is tried again.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.envelope import wrap
from msashop.contracts.events import ChargePayment, RefundPayment
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.domain import ChargeResult
from msashop.services.payment.handlers import CapturedMeanwhile, PaymentHandlers
from msashop.services.payment.main import create_service
from msashop.services.payment.provider import SimulatedProvider
from tests.service_harness import ServiceHarness, running

PROVIDER_DELAY = 0.5


class SlowProvider(SimulatedProvider):
    """Takes PROVIDER_DELAY seconds to answer each charge (within the caller's timeout); counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.charges = 0

    async def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        self.charges += 1
        await asyncio.sleep(PROVIDER_DELAY)
        return await super().charge(
            token=token, amount=amount, currency=currency, idempotency_key=idempotency_key
        )


def _charge(order_id: str) -> ChargePayment:
    return ChargePayment(
        order_id=order_id,
        user_id="u1",
        amount=Decimal("42.50"),
        currency="USD",
        token="tok_visa",
        idempotency_key=f"saga-{order_id}:charge",
    )


@pytest.fixture
def provider() -> SlowProvider:
    return SlowProvider()


@pytest.fixture
async def payment(tmp_path: Path, provider: SlowProvider) -> AsyncIterator[ServiceHarness]:
    settings = PaymentSettings.load("payment", data_dir=tmp_path, provider_timeout_seconds=5.0)
    async with running(create_service(settings, bus=InMemoryBus(), provider=provider)) as harness:
        yield harness


async def test_slow_charges_of_two_orders_overlap(payment: ServiceHarness) -> None:
    started = time.perf_counter()
    await asyncio.gather(payment.deliver(_charge("o1")), payment.deliver(_charge("o2")))
    elapsed = time.perf_counter() - started

    # Asked inside the unit of work, the second charge would wait for the first's write lock.
    assert elapsed < 1.8 * PROVIDER_DELAY
    replies = await payment.outbox_events()
    assert sorted((r.key, r.type) for r in replies) == [
        ("o1", "payment.captured"),
        ("o2", "payment.captured"),
    ]


async def test_a_recorded_charge_is_answered_without_asking_the_provider(
    payment: ServiceHarness, provider: SlowProvider
) -> None:
    await payment.deliver(_charge("o1"), event_id="charge-1")
    await payment.deliver(_charge("o1"), event_id="charge-2")  # resent by the saga: a new id

    assert provider.charges == 1
    assert [r.type for r in await payment.outbox_events()] == ["payment.captured", "payment.captured"]


async def test_concurrent_charges_of_one_order_record_one_payment(
    payment: ServiceHarness, provider: SlowProvider
) -> None:
    await asyncio.gather(
        payment.deliver(_charge("o1"), event_id="charge-1"),
        payment.deliver(_charge("o1"), event_id="charge-2"),
    )

    # Both asked (same idempotency key, so one capture); the later apply answers from the record.
    assert provider.charges == 2
    replies = await payment.outbox_events()
    assert [r.type for r in replies] == ["payment.captured", "payment.captured"]
    assert replies[0].data == replies[1].data
    response = await payment.client.get(
        "/payments", params={"order_id": "o1"}, headers=payment.auth_headers("u1")
    )
    assert [p["status"] for p in response.json()] == ["CAPTURED"]


async def test_a_refund_prepared_before_the_capture_is_refused_and_tried_again(
    payment: ServiceHarness,
) -> None:
    refund = wrap(RefundPayment(order_id="o1", idempotency_key="saga-o1:refund"), source="test", key="o1")
    await payment.deliver(_charge("o1"))
    handlers = PaymentHandlers(SimulatedProvider(), timeout=1.0, attempts=1, backoff=0.01)

    async with payment.service.unit_of_work() as uow:  # prepare found nothing captured (None)
        with pytest.raises(CapturedMeanwhile):
            await handlers.apply_refund(refund, uow, None)
    await payment.bus.publish(refund)  # the redelivery prepares again and refunds

    assert [r.type for r in await payment.outbox_events()] == ["payment.captured", "payment.refunded"]
