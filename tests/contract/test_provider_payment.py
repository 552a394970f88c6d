"""The order service's pact verified against the real payment service (in-process, SQLite, its
simulated card provider, commands and replies on the in-memory bus)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.contracts.events import ChargePayment
from msashop.services.payment.config import PaymentSettings
from msashop.services.payment.main import create_service
from tests.contract.matching import Params
from tests.contract.pacts import Interaction, given, interactions, verify_command
from tests.service_harness import ServiceHarness, running


@pytest.fixture
async def payment(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    settings = PaymentSettings.load(
        "payment", data_dir=tmp_path, provider_timeout_seconds=0.05, provider_backoff_seconds=0.01
    )
    async with running(create_service(settings, bus=InMemoryBus()), harness=ServiceHarness) as harness:
        yield harness


async def nothing_to_set_up(payment: ServiceHarness) -> Params:
    return {}  # the simulated provider decides by the card token the request carries


def charged_with(token: str) -> Callable[[ServiceHarness], Awaitable[Params]]:
    async def state(payment: ServiceHarness) -> Params:
        await payment.deliver(
            ChargePayment(
                order_id="o-1",
                user_id="u-1",
                amount=Decimal("44.48"),
                currency="USD",
                token=token,
                idempotency_key="saga-1:charge",
            )
        )
        return {}

    return state


STATES = {
    "the card tok_visa is good": nothing_to_set_up,
    "the card tok_decline is declined": nothing_to_set_up,
    "the provider fails for tok_error": nothing_to_set_up,
    "order o-1 was charged with tok_visa": charged_with("tok_visa"),
    "order o-1 was charged with tok_refund_fail": charged_with("tok_refund_fail"),
    "nothing was charged for order o-1": nothing_to_set_up,
}


@pytest.mark.parametrize("interaction", interactions("payment"), ids=str)
async def test_payment_honours_the_order_pact(payment: ServiceHarness, interaction: Interaction) -> None:
    state = await given(STATES, interaction)(payment)
    assert await verify_command(payment, interaction, state) == []
