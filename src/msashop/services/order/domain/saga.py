"""The checkout saga's memory for one order: status, current step, a timestamped step log.

    CREATE_ORDER -> RESERVE_INVENTORY -> PROCESS_PAYMENT -> (COMMIT_INVENTORY, SEND_NOTIFICATION)
    on failure, in reverse: REFUND_PAYMENT, RELEASE_INVENTORY (the order is cancelled at once)

Status: RUNNING until every forward step is done (COMPLETED) or a step failed; then
COMPENSATING while the compensations' replies are awaited, FAILED once they all came back, or
COMPENSATION_FAILED when one could not be done (an operator must act). `deadline_at` is when
the step being waited for times out (or when a failed notification is tried again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"


class Step(StrEnum):
    """Forward steps, then the compensations that undo them (in reverse order)."""

    CREATE_ORDER = "CREATE_ORDER"
    RESERVE_INVENTORY = "RESERVE_INVENTORY"
    PROCESS_PAYMENT = "PROCESS_PAYMENT"
    COMMIT_INVENTORY = "COMMIT_INVENTORY"
    SEND_NOTIFICATION = "SEND_NOTIFICATION"
    REFUND_PAYMENT = "REFUND_PAYMENT"
    RELEASE_INVENTORY = "RELEASE_INVENTORY"


COMPENSATIONS = (Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY)
# Steps whose command is simply sent again when its reply is overdue: the receiver is idempotent
# by key and none of them can fail the order any more (the money is already captured).
RESUMABLE = (Step.COMMIT_INVENTORY, Step.SEND_NOTIFICATION)


class StepStatus(StrEnum):
    RUNNING = "RUNNING"  # the command is queued; its reply has not arrived
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass
class SagaStep:
    name: Step
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


@dataclass
class Saga:
    id: str
    order_id: str
    deadline_at: datetime
    updated_at: datetime
    payment_token: str | None
    status: SagaStatus = SagaStatus.RUNNING
    step: Step = Step.CREATE_ORDER
    payment_id: str | None = None
    steps: list[SagaStep] = field(default_factory=list)

    @classmethod
    def start(
        cls, saga_id: str, order_id: str, payment_token: str, now: datetime, timeout: timedelta
    ) -> Saga:
        """The order is placed (CREATE_ORDER done) and the reservation is requested."""
        saga = cls(saga_id, order_id, now + timeout, now, payment_token)
        saga.steps.append(SagaStep(Step.CREATE_ORDER, StepStatus.COMPLETED, now, now))
        saga.begin(Step.RESERVE_INVENTORY, now, timeout)
        return saga

    # --- reading ------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.status is SagaStatus.RUNNING

    @property
    def charge_requested(self) -> bool:
        return any(s.name is Step.PROCESS_PAYMENT for s in self.steps)

    def attempts(self, step: Step) -> int:
        """How many times the step's command was sent."""
        return sum(1 for s in self.steps if s.name is step)

    def waiting_for(self, step: Step) -> bool:
        return any(s.name is step and s.status is StepStatus.RUNNING for s in self.steps)

    def last(self, step: Step) -> SagaStep | None:
        return next((s for s in reversed(self.steps) if s.name is step), None)

    def running(self, steps: tuple[Step, ...]) -> list[Step]:
        """Those of `steps` whose reply is awaited, each once, in log order."""
        found: list[Step] = []
        for s in self.steps:
            if s.name in steps and s.status is StepStatus.RUNNING and s.name not in found:
                found.append(s.name)
        return found

    # --- changes ------------------------------------------------------------------------------
    def begin(self, step: Step, now: datetime, timeout: timedelta) -> None:
        self.steps.append(SagaStep(step, StepStatus.RUNNING, now))
        self.step = step
        self.deadline_at = now + timeout
        self.updated_at = now

    def finish(self, step: Step, now: datetime, error: str | None = None) -> bool:
        """Record the reply to `step`'s command. False if no such step was waiting: a duplicate."""
        for entry in reversed(self.steps):
            if entry.name is step and entry.status is StepStatus.RUNNING:
                entry.status = StepStatus.FAILED if error else StepStatus.COMPLETED
                entry.finished_at = now
                entry.error = error
                self.updated_at = now
                return True
        return False

    def give_up(self, step: Step, now: datetime, error: str) -> None:
        """The step's reply is overdue: close its attempt as failed (a resend opens a new one)."""
        self.finish(step, now, error=error)

    def retry_later(self, step: Step, now: datetime, delay: timedelta) -> None:
        """A resumable step failed: stay RUNNING on it and try again when the delay is over."""
        self.step = step
        self.deadline_at = now + delay
        self.updated_at = now

    def complete_if_done(self, now: datetime) -> bool:
        """RUNNING -> COMPLETED once every forward step after the payment has its reply."""
        if self.status is not SagaStatus.RUNNING:
            return False
        done = {s.name for s in self.steps if s.status is StepStatus.COMPLETED}
        if not set(RESUMABLE) <= done or self.running(RESUMABLE):
            return False
        self.status = SagaStatus.COMPLETED
        self._end(now)
        return True

    def compensate(self, steps: list[Step], now: datetime, timeout: timedelta) -> None:
        """Log the compensations queued (newest step first) and wait for their replies."""
        for step in steps:
            self.begin(step, now, timeout)
        if self.status is not SagaStatus.COMPENSATION_FAILED:
            self.status = SagaStatus.COMPENSATING if steps else SagaStatus.FAILED
        self._end(now)

    def compensated_if_done(self, now: datetime) -> bool:
        """COMPENSATING -> FAILED once every compensation has answered."""
        if self.status is not SagaStatus.COMPENSATING or self.running(COMPENSATIONS):
            return False
        self.status = SagaStatus.FAILED
        self.updated_at = now
        return True

    def compensation_failed(self, step: Step, now: datetime, error: str) -> None:
        self.finish(step, now, error=error)
        self.status = SagaStatus.COMPENSATION_FAILED
        self.step = step
        self.updated_at = now

    def _end(self, now: datetime) -> None:
        self.payment_token = None  # card data is kept no longer than the saga needs it
        self.updated_at = now
