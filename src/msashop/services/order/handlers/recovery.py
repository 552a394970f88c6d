"""Saga recovery: at start and every few seconds, act on sagas whose step is past its deadline.

- Waiting for the reservation or the payment: compensate (the order ends CANCELLED `timeout`;
  a refund is queued once a charge was requested, since its capture may still be in flight).
- Confirmed and waiting for the stock commit or the notification: send the command again
  (a failed notification is tried again with growing delays; the paid order is never cancelled).
- Compensating: send the unanswered compensations again; after `compensation_attempts` sends
  the compensation counts as failed: COMPENSATION_FAILED and an admin alert.

One transaction per saga, so one bad row does not hold back the others; the saga row is read
FOR UPDATE (PostgreSQL; SQLite serialises writers), so a reply and the sweep never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.services.order.db import SagaRepository
from msashop.services.order.domain import COMPENSATIONS, RESUMABLE, OrderStatus, SagaStatus, StepStatus
from msashop.services.order.handlers import commands, store
from msashop.services.order.handlers.saga import Orchestrator
from msashop.services.order.metrics import report_sagas

log = structlog.get_logger()


async def recover_overdue_sagas(
    new_uow: Callable[[], UnitOfWork], orchestrator: Orchestrator, now: datetime | None = None
) -> int:
    """Handle every overdue saga; returns how many were acted on."""
    now = now or datetime.now(UTC)
    async with new_uow() as uow:
        repo = SagaRepository(uow.session)
        order_ids = await repo.overdue_order_ids(now)
        await report_sagas(uow.session, now)
    acted = 0
    for order_id in order_ids:
        async with new_uow() as uow:
            if await _recover_one(uow, orchestrator, order_id, now):
                await uow.commit()
                acted += 1
    if acted:
        log.warning("saga.recovered", count=acted)
    return acted


async def _recover_one(uow: UnitOfWork, orchestrator: Orchestrator, order_id: str, now: datetime) -> bool:
    saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
    order = await store.load(uow, order_id)
    if saga is None or order is None or saga.deadline_at >= now:
        return False  # a reply got there first
    timeout = orchestrator.policy.step_timeout
    if saga.status is SagaStatus.RUNNING and order.status is OrderStatus.PENDING:
        log.warning("saga.step_timed_out", order_id=order_id, step=saga.step.value)
        await orchestrator.cancel(uow, order, saga, reason="timeout")
        return True
    if saga.status is SagaStatus.RUNNING:
        saga.deadline_at = now + timeout  # pushed back even when nothing is left to resend
        for step in RESUMABLE:
            last = saga.last(step)
            if last is None or last.status is StepStatus.COMPLETED:
                continue
            if last.status is StepStatus.RUNNING:
                saga.give_up(step, now, "timeout")
            attempt = saga.attempts(step) + 1
            saga.begin(step, now, timeout)
            commands.send(uow, order, saga, step, None, attempt=attempt)
            log.warning("saga.step_resent", order_id=order_id, step=step.value, attempt=attempt)
        saga.complete_if_done(now)
    elif saga.status is SagaStatus.COMPENSATING:
        for step in saga.running(COMPENSATIONS):
            if saga.attempts(step) >= orchestrator.policy.compensation_attempts:
                await orchestrator.alert(
                    uow, saga, step, f"no answer after {saga.attempts(step)} attempts", None
                )
                break
            saga.give_up(step, now, "timeout")
            attempt = saga.attempts(step) + 1
            saga.begin(step, now, timeout)
            commands.send(uow, order, saga, step, None, attempt=attempt)
            log.warning("saga.compensation_resent", order_id=order_id, step=step.value, attempt=attempt)
    else:
        return False
    await SagaRepository(uow.session).save(saga)
    return True
