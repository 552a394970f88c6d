"""The checkout saga's memory for one order: its status, current step and step log, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from msashop.services.order.domain import (
    COMPENSATIONS,
    RESUMABLE,
    Saga,
    SagaStatus,
    Step,
    StepStatus,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
TIMEOUT = timedelta(seconds=300)


def _saga() -> Saga:
    return Saga.start("s1", "o1", "tok_visa", NOW, TIMEOUT)


def _log(saga: Saga) -> list[tuple[Step, StepStatus]]:
    return [(s.name, s.status) for s in saga.steps]


def _paid() -> Saga:
    """Reserved and captured; the commit and the notification are out."""
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, NOW)
    saga.begin(Step.PROCESS_PAYMENT, NOW, TIMEOUT)
    saga.finish(Step.PROCESS_PAYMENT, NOW)
    for step in RESUMABLE:
        saga.begin(step, NOW, TIMEOUT)
    return saga


# --- start, begin, finish ----------------------------------------------------------------------
def test_a_saga_starts_with_the_order_created_and_waits_for_the_reservation() -> None:
    saga = _saga()
    assert (saga.id, saga.order_id, saga.payment_token) == ("s1", "o1", "tok_visa")
    assert saga.status is SagaStatus.RUNNING and saga.is_running and saga.step is Step.RESERVE_INVENTORY
    assert _log(saga) == [
        (Step.CREATE_ORDER, StepStatus.COMPLETED),
        (Step.RESERVE_INVENTORY, StepStatus.RUNNING),
    ]
    assert saga.deadline_at == NOW + TIMEOUT and saga.updated_at == NOW
    assert saga.waiting_for(Step.RESERVE_INVENTORY) and not saga.charge_requested


def test_beginning_a_step_moves_the_deadline_and_the_current_step() -> None:
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, NOW)
    saga.begin(Step.PROCESS_PAYMENT, LATER, timedelta(seconds=5))
    assert (saga.step, saga.deadline_at, saga.updated_at) == (
        Step.PROCESS_PAYMENT,
        LATER + timedelta(seconds=5),
        LATER,
    )
    assert saga.charge_requested and saga.steps[-1].started_at == LATER


def test_a_reply_closes_its_waiting_step_once() -> None:
    saga = _saga()
    assert saga.finish(Step.RESERVE_INVENTORY, LATER)
    assert not saga.finish(Step.RESERVE_INVENTORY, LATER)  # the duplicate
    assert saga.steps[-1].status is StepStatus.COMPLETED and saga.steps[-1].finished_at == LATER
    assert not saga.waiting_for(Step.RESERVE_INVENTORY)


def test_a_reply_to_a_step_never_begun_is_a_duplicate() -> None:
    saga = _saga()
    assert not saga.finish(Step.PROCESS_PAYMENT, LATER)
    assert _log(saga)[-1] == (Step.RESERVE_INVENTORY, StepStatus.RUNNING)


def test_a_refusal_fails_the_step_with_its_error() -> None:
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, LATER, error="out_of_stock")
    assert (saga.steps[-1].status, saga.steps[-1].error) == (StepStatus.FAILED, "out_of_stock")
    assert saga.is_running  # failing a step is the orchestrator's cue, not an end by itself


# --- attempts, running, last ------------------------------------------------------------------
def test_a_resend_after_giving_up_is_a_new_attempt_and_the_reply_closes_the_newest() -> None:
    saga = _paid()
    saga.give_up(Step.COMMIT_INVENTORY, LATER, "no reply")
    assert saga.last(Step.COMMIT_INVENTORY).status is StepStatus.FAILED  # type: ignore[union-attr]
    saga.begin(Step.COMMIT_INVENTORY, LATER, TIMEOUT)
    assert saga.attempts(Step.COMMIT_INVENTORY) == 2
    assert saga.attempts(Step.REFUND_PAYMENT) == 0
    assert saga.finish(Step.COMMIT_INVENTORY, LATER)
    commits = [s for s in saga.steps if s.name is Step.COMMIT_INVENTORY]
    assert [(s.status, s.error) for s in commits] == [
        (StepStatus.FAILED, "no reply"),
        (StepStatus.COMPLETED, None),
    ]
    assert saga.last(Step.COMMIT_INVENTORY) is commits[-1]
    assert saga.last(Step.REFUND_PAYMENT) is None


def test_running_names_each_awaited_step_once_in_log_order() -> None:
    saga = _paid()
    saga.begin(Step.COMMIT_INVENTORY, LATER, TIMEOUT)  # a resend while the first is still out
    assert saga.running(RESUMABLE) == [Step.COMMIT_INVENTORY, Step.SEND_NOTIFICATION]
    assert saga.running(COMPENSATIONS) == []
    saga.finish(Step.SEND_NOTIFICATION, LATER)
    assert saga.running(RESUMABLE) == [Step.COMMIT_INVENTORY]


def test_a_failed_notification_waits_and_stays_running_on_its_step() -> None:
    saga = _paid()
    saga.finish(Step.SEND_NOTIFICATION, LATER, error="smtp down")
    saga.retry_later(Step.SEND_NOTIFICATION, LATER, timedelta(seconds=5))
    assert (saga.status, saga.step, saga.deadline_at) == (
        SagaStatus.RUNNING,
        Step.SEND_NOTIFICATION,
        LATER + timedelta(seconds=5),
    )


# --- completing -------------------------------------------------------------------------------
def test_completing_needs_the_commit_and_the_notification_and_forgets_the_token() -> None:
    saga = _paid()
    assert not saga.complete_if_done(LATER)
    saga.finish(Step.COMMIT_INVENTORY, LATER)
    assert not saga.complete_if_done(LATER)  # the notification is still out
    saga.finish(Step.SEND_NOTIFICATION, LATER)
    assert saga.complete_if_done(LATER)
    assert (saga.status, saga.payment_token, saga.updated_at) == (SagaStatus.COMPLETED, None, LATER)
    assert not saga.complete_if_done(LATER)  # once


def test_a_failed_notification_does_not_complete_the_saga() -> None:
    saga = _paid()
    saga.finish(Step.COMMIT_INVENTORY, LATER)
    saga.finish(Step.SEND_NOTIFICATION, LATER, error="smtp down")
    assert not saga.complete_if_done(LATER)
    saga.begin(Step.SEND_NOTIFICATION, LATER, TIMEOUT)
    assert not saga.complete_if_done(LATER)  # sent again, not answered yet
    saga.finish(Step.SEND_NOTIFICATION, LATER)
    assert saga.complete_if_done(LATER)


def test_a_completed_step_with_a_resend_still_out_does_not_complete() -> None:
    saga = _paid()
    saga.finish(Step.COMMIT_INVENTORY, LATER)
    saga.finish(Step.SEND_NOTIFICATION, LATER)
    saga.begin(Step.COMMIT_INVENTORY, LATER, TIMEOUT)  # resent: its reply is awaited again
    assert not saga.complete_if_done(LATER)


def test_a_compensating_saga_never_completes() -> None:
    saga = _paid()
    saga.compensate([Step.REFUND_PAYMENT], LATER, TIMEOUT)
    saga.finish(Step.COMMIT_INVENTORY, LATER)
    saga.finish(Step.SEND_NOTIFICATION, LATER)
    assert not saga.complete_if_done(LATER)
    assert saga.status is SagaStatus.COMPENSATING


# --- compensating -----------------------------------------------------------------------------
def test_compensating_logs_the_compensations_and_waits_for_them() -> None:
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, NOW)
    saga.begin(Step.PROCESS_PAYMENT, NOW, TIMEOUT)
    saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], LATER, TIMEOUT)
    assert saga.status is SagaStatus.COMPENSATING and saga.payment_token is None
    assert _log(saga)[-2:] == [
        (Step.REFUND_PAYMENT, StepStatus.RUNNING),
        (Step.RELEASE_INVENTORY, StepStatus.RUNNING),
    ]
    assert (saga.step, saga.deadline_at) == (Step.RELEASE_INVENTORY, LATER + TIMEOUT)
    assert saga.running(COMPENSATIONS) == [Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY]


def test_compensated_once_every_compensation_answered() -> None:
    saga = _saga()
    saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], NOW, TIMEOUT)
    assert not saga.compensated_if_done(LATER)
    saga.finish(Step.RELEASE_INVENTORY, LATER)
    assert not saga.compensated_if_done(LATER)  # the refund is still out
    saga.finish(Step.REFUND_PAYMENT, LATER)
    assert saga.compensated_if_done(LATER)
    assert (saga.status, saga.updated_at) == (SagaStatus.FAILED, LATER)
    assert not saga.compensated_if_done(LATER)  # once


def test_nothing_to_compensate_fails_the_saga_at_once() -> None:
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, NOW, error="out_of_stock")
    saga.compensate([], LATER, TIMEOUT)
    assert (saga.status, saga.payment_token) == (SagaStatus.FAILED, None)
    assert _log(saga)[-1] == (Step.RESERVE_INVENTORY, StepStatus.FAILED)


def test_compensating_a_completed_saga_undoes_the_paid_order() -> None:
    saga = _paid()
    for step in RESUMABLE:
        saga.finish(step, NOW)
    assert saga.complete_if_done(NOW)
    saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], LATER, TIMEOUT)
    assert saga.status is SagaStatus.COMPENSATING


def test_only_a_compensating_saga_becomes_failed() -> None:
    saga = _saga()
    assert not saga.compensated_if_done(LATER)
    assert saga.status is SagaStatus.RUNNING


def test_a_failed_compensation_stops_the_saga_for_an_operator() -> None:
    saga = _saga()
    saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], NOW, TIMEOUT)
    saga.compensation_failed(Step.REFUND_PAYMENT, LATER, "refund failed: provider_down")
    assert (saga.status, saga.step, saga.updated_at) == (
        SagaStatus.COMPENSATION_FAILED,
        Step.REFUND_PAYMENT,
        LATER,
    )
    refund = saga.last(Step.REFUND_PAYMENT)
    assert refund is not None
    assert (refund.status, refund.error) == (StepStatus.FAILED, "refund failed: provider_down")
    saga.finish(Step.RELEASE_INVENTORY, LATER)
    assert not saga.compensated_if_done(LATER)  # it stays COMPENSATION_FAILED
    saga.compensate([Step.RELEASE_INVENTORY], LATER, TIMEOUT)  # a late compensation keeps it too
    assert saga.status is SagaStatus.COMPENSATION_FAILED


@pytest.mark.parametrize("step", list(Step))
def test_attempts_count_every_send_of_a_step(step: Step) -> None:
    saga = Saga("s1", "o1", NOW, NOW, None)
    for n in range(1, 4):
        saga.begin(step, NOW, TIMEOUT)
        assert saga.attempts(step) == n
