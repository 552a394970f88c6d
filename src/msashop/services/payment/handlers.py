"""Payment commands: charge an order once through the provider port, refund a capture through it.

Both are chassis `PreparedHandler`s, so the provider call (retries and backoff included) never
holds the service's write lock: `prepare_*` reads what is recorded and asks the provider, outside
any transaction; `apply_*` runs in the unit of work the chassis opened (inbox claim made), looks
again under the lock and records or answers from what is there now; it never commits. A repeated
prepare (a concurrent delivery, a crash before the commit) asks the provider again under the same
idempotency key, which answers from the first call. A reply's event id derives from the
command's, so handling the same command twice queues it once.
The saga resends a command it got no answer to under a new envelope id: each one is answered
again from what was recorded (a refund the provider refused is tried again).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

from msashop.chassis.metrics import errors_total
from msashop.chassis.prepared import PreparedHandler, Reader
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import (
    ChargePayment,
    Payload,
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    PaymentRefunded,
    PaymentRefundFailed,
    PaymentRefundSkipped,
    RefundPayment,
)
from msashop.services.payment.db import PaymentRepository
from msashop.services.payment.domain import (
    ChargeResult,
    Payment,
    PaymentProvider,
    PaymentStatus,
    ProviderError,
    validate_amount,
)
from msashop.services.payment.metrics import (
    payment_amount_dollars,
    payment_processing_duration_seconds,
    provider_name,
)

log = structlog.get_logger()
SOURCE = "payment"
T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """What a charge came to: the status to record, why, and the provider's capture id."""

    status: PaymentStatus
    reason: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class DecidedCharge:
    """A charge decided before the unit of work, and how long deciding took (retries included)."""

    decision: Decision
    seconds: float


@dataclass(frozen=True)
class AskedRefund:
    """A refund asked of the provider before the unit of work: why it refused, None if it refunded."""

    failure: str | None


class CapturedMeanwhile(Exception):
    """A refund found nothing captured, then a charge was recorded before its unit of work.

    Refused so that the redelivery prepares again and asks the provider for the refund.
    """


def _reply(uow: UnitOfWork, payload: Payload, order_id: str, cause: Envelope) -> None:
    uow.publish(
        wrap(
            payload,
            source=SOURCE,
            key=order_id,
            cause=cause,
            event_id=deterministic_id(SOURCE, cause.id, payload.subject),
        )
    )


def outcome_of(payment: Payment) -> Payload:
    """The answer to a charge of this order, from what was recorded."""
    if payment.status is PaymentStatus.CAPTURED:
        return PaymentCaptured(order_id=payment.order_id, payment_id=payment.id, amount=payment.amount)
    if payment.status is PaymentStatus.DECLINED:
        return PaymentDeclined(order_id=payment.order_id, reason=payment.reason or "declined")
    if payment.status is PaymentStatus.REFUNDED:
        # The money went back: an order must never be confirmed on this payment again.
        return PaymentFailed(order_id=payment.order_id, reason="refunded")
    return PaymentFailed(order_id=payment.order_id, reason=payment.reason or "provider_error")


class PaymentHandlers:
    """The command handlers, given the provider port and how patiently to call it."""

    def __init__(self, provider: PaymentProvider, *, timeout: float, attempts: int, backoff: float) -> None:
        self.provider = provider
        self.provider_name = provider_name(provider)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        # What main.py registers: the provider call in prepare, outside the write lock.
        self.charge = PreparedHandler(self.prepare_charge, self.apply_charge)
        self.refund = PreparedHandler(self.prepare_refund, self.apply_refund)

    async def prepare_charge(self, envelope: Envelope, read: Reader) -> DecidedCharge | None:
        """Outside the lock: decide the charge, unless the order's payment is recorded (None)."""
        cmd = ChargePayment.model_validate(envelope.data)
        async with read() as session:
            if await PaymentRepository(session).get_by_order(cmd.order_id) is not None:
                return None
        started = time.perf_counter()
        decision = await self.decide(cmd)
        return DecidedCharge(decision, time.perf_counter() - started)

    async def apply_charge(self, envelope: Envelope, uow: UnitOfWork, decided: DecidedCharge | None) -> None:
        """Record the decided charge, or answer from the payment recorded before (or meanwhile)."""
        cmd = ChargePayment.model_validate(envelope.data)
        repo = PaymentRepository(uow.session)
        existing = await repo.get_by_order(cmd.order_id, lock=True)
        if existing is not None:
            log.info("payment.charge_answered_again", order_id=cmd.order_id, status=existing.status)
            _reply(uow, outcome_of(existing), cmd.order_id, envelope)
            return
        if decided is None:  # payments are never deleted: seen in prepare means still there
            raise RuntimeError(f"the payment of order {cmd.order_id} was recorded, then gone")
        decision = decided.decision
        status = decision.status
        payment_processing_duration_seconds.labels(self.provider_name, status.value).observe(decided.seconds)
        now = datetime.now(UTC)
        payment = Payment(
            id=str(uuid.uuid4()),
            order_id=cmd.order_id,
            user_id=cmd.user_id,
            amount=cmd.amount,
            currency=cmd.currency,
            status=status,
            reason=decision.reason,
            provider_reference=decision.reference,
            created_at=now,
            updated_at=now,
        )
        await repo.add(payment)
        if status is PaymentStatus.CAPTURED:
            payment_amount_dollars.labels(cmd.currency, self.provider_name).observe(float(cmd.amount))
        else:  # the guide's recordError({type: 'payment_failure', code})
            errors_total.labels(type="payment_failure", code=decision.reason or status.value.lower()).inc()
        log.info("payment.recorded", order_id=cmd.order_id, status=status, reason=decision.reason)
        _reply(uow, outcome_of(payment), cmd.order_id, envelope)

    async def decide(self, cmd: ChargePayment) -> Decision:
        """Ask the provider (with retries) and turn its answer or its failure into a status."""
        invalid = validate_amount(cmd.amount)
        if invalid is not None:
            return Decision(PaymentStatus.DECLINED, invalid)
        try:
            result: ChargeResult = await self._with_retries(
                lambda: self.provider.charge(
                    token=cmd.token,
                    amount=cmd.amount,
                    currency=cmd.currency,
                    # Per order, not per command: the provider captures an order once.
                    idempotency_key=f"order:{cmd.order_id}",
                )
            )
        except TimeoutError:
            return Decision(PaymentStatus.FAILED, "provider_timeout")
        except ProviderError:
            return Decision(PaymentStatus.FAILED, "provider_error")
        if result.approved:
            return Decision(PaymentStatus.CAPTURED, reference=result.reference or None)
        return Decision(PaymentStatus.DECLINED, result.decline_reason or "declined")

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry outages and timeouts with a short exponential backoff; the last error is raised."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=2.0),
            retry=retry_if_exception_type((ProviderError, TimeoutError)),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await asyncio.wait_for(call(), timeout=self.timeout)
        raise AssertionError("tenacity re-raises the last error")  # pragma: no cover

    async def prepare_refund(self, envelope: Envelope, read: Reader) -> AskedRefund | None:
        """Outside the lock: ask the provider to refund a capture; None if nothing is captured."""
        cmd = RefundPayment.model_validate(envelope.data)
        async with read() as session:
            payment = await PaymentRepository(session).get_by_order(cmd.order_id)
        if payment is None or payment.status is not PaymentStatus.CAPTURED:
            return None
        return AskedRefund(await self.refund_at_provider(payment))

    async def apply_refund(self, envelope: Envelope, uow: UnitOfWork, asked: AskedRefund | None) -> None:
        """Every refund command is answered: refunded (again), refund_failed, or refund_skipped."""
        cmd = RefundPayment.model_validate(envelope.data)
        repo = PaymentRepository(uow.session)
        payment = await repo.get_by_order(cmd.order_id, lock=True)
        if payment is None or payment.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED):
            log.info(
                "payment.refund_skipped", order_id=cmd.order_id, status=payment.status if payment else None
            )
            skipped = PaymentRefundSkipped(order_id=cmd.order_id, reason="nothing_captured")
            _reply(uow, skipped, cmd.order_id, envelope)
            return
        if payment.status is PaymentStatus.CAPTURED:
            if asked is None:
                raise CapturedMeanwhile(f"order {cmd.order_id} was captured after its refund was prepared")
            failure = asked.failure
            if failure is not None:
                payment.refund_failed(failure, datetime.now(UTC))
                await repo.update(payment)
                # Money is still held: the saga alerts the admins, this log line says why.
                log.error(
                    "payment.refund_failed", order_id=cmd.order_id, payment_id=payment.id, reason=failure
                )
                refused = PaymentRefundFailed(order_id=cmd.order_id, payment_id=payment.id, reason=failure)
                _reply(uow, refused, cmd.order_id, envelope)
                return
            payment.refund(datetime.now(UTC))
            await repo.update(payment)
            log.info("payment.refunded", order_id=cmd.order_id, amount=str(payment.amount))
        # Refunded just now, or before (perhaps by a concurrent delivery): never refunded twice.
        _reply(
            uow,
            PaymentRefunded(order_id=cmd.order_id, payment_id=payment.id, amount=payment.refunded_amount),
            cmd.order_id,
            envelope,
        )

    async def refund_at_provider(self, payment: Payment) -> str | None:
        """Have the provider give the capture back (with retries); None if it did, else why not."""
        try:
            await self._with_retries(
                lambda: self.provider.refund(
                    # A payment captured before references were recorded names none.
                    reference=payment.provider_reference or "",
                    amount=payment.amount,
                    # Per order: a crash between the provider's answer and the commit refunds once.
                    idempotency_key=f"order:{payment.order_id}:refund",
                )
            )
        except TimeoutError:
            return "provider_timeout"
        except ProviderError:
            return "provider_error"
        return None


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("payment.provider_retry", attempt=state.attempt_number, error=type(error).__name__)
