"""The simulated payment provider, honouring the CONTRACT's test tokens.

`tok_visa` captures; `tok_decline` is declined (`card_declined`); `tok_error` fails every time
(ProviderError); `tok_slow` answers only after `slow_delay` seconds, longer than a caller's
timeout; `tok_refund_fail` captures, but every refund of that capture raises ProviderError; any
other token is declined (`invalid_token`).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from msashop.services.payment.domain import ChargeResult, ProviderError

# The reference of a `tok_refund_fail` capture says so itself: the simulator keeps its charges
# in memory only, and a restarted payment service must still see that this capture never refunds.
NO_REFUND_PREFIX = "sim_norefund_"


class SimulatedProvider:
    name = "simulated"  # the `provider` label of the payment metrics

    def __init__(self, *, slow_delay: float = 2.0) -> None:
        self.slow_delay = slow_delay
        # Like a real provider: a charge or refund repeated with the same idempotency key is
        # answered from the first one, never captured or refunded twice.
        self._charges: dict[str, ChargeResult] = {}
        self._refunds: dict[str, str] = {}

    async def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        if token == "tok_error":
            raise ProviderError("simulated provider failure")
        if token == "tok_slow":
            await asyncio.sleep(self.slow_delay)
        if idempotency_key in self._charges:
            return self._charges[idempotency_key]
        if token in ("tok_visa", "tok_slow"):
            result = ChargeResult(approved=True, reference=f"sim_{uuid.uuid4().hex}")
        elif token == "tok_refund_fail":
            result = ChargeResult(approved=True, reference=f"{NO_REFUND_PREFIX}{uuid.uuid4().hex}")
        elif token == "tok_decline":
            result = ChargeResult(approved=False, decline_reason="card_declined")
        else:
            result = ChargeResult(approved=False, decline_reason="invalid_token")
        self._charges[idempotency_key] = result
        return result

    async def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        if reference.startswith(NO_REFUND_PREFIX):
            raise ProviderError(f"simulated refund failure for {reference}")
        if idempotency_key not in self._refunds:
            self._refunds[idempotency_key] = f"sim_re_{uuid.uuid4().hex}"
        return self._refunds[idempotency_key]
