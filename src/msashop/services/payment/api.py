"""HTTP in: an order's payments (the gateway maps /api/payments to /payments)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from msashop.chassis.auth import CurrentUser
from msashop.chassis.dependencies import Uow
from msashop.services.payment.db import PaymentRepository
from msashop.services.payment.domain import Payment

router = APIRouter(prefix="/payments", tags=["payments"])


class PaymentOut(BaseModel):
    id: str
    order_id: str
    amount: float
    currency: str
    status: str
    refunded_amount: float

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            order_id=p.order_id,
            amount=float(p.amount),
            currency=p.currency,
            status=p.status.value,
            refunded_amount=float(p.refunded_amount),
        )


@router.get("", response_model=list[PaymentOut])
async def list_payments(
    uow: Uow, user: CurrentUser, order_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> list[PaymentOut]:
    """The order's payments, for its owner or an admin; anyone else sees an empty list."""
    async with uow:
        payment = await PaymentRepository(uow.session).get_by_order(order_id)
    if payment is None or not payment.visible_to(user.user_id, is_admin=user.is_admin):
        return []
    return [PaymentOut.of(payment)]
