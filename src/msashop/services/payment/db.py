"""The payments table and its repository."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.payment.domain import Payment, PaymentStatus

metadata = sa.MetaData()

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # One payment per order: a second charge for the order cannot be recorded.
    sa.Column("order_id", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("refunded_amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("provider_reference", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('CAPTURED', 'DECLINED', 'FAILED', 'REFUNDED')", name="ck_payment_status"),
    sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="ck_payment_refund"),
)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp here was written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_payment(row: sa.Row[Any]) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        user_id=row.user_id,
        amount=Decimal(row.amount),
        currency=row.currency,
        status=PaymentStatus(row.status),
        reason=row.reason,
        refunded_amount=Decimal(row.refunded_amount),
        provider_reference=row.provider_reference,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_order(self, order_id: str, *, lock: bool = False) -> Payment | None:
        query = sa.select(payments).where(payments.c.order_id == order_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _to_payment(row) if row else None

    async def add(self, payment: Payment) -> None:
        await self.session.execute(sa.insert(payments).values(**_columns(payment)))

    async def update(self, payment: Payment) -> None:
        await self.session.execute(
            sa.update(payments).where(payments.c.id == payment.id).values(**_columns(payment))
        )


def _columns(p: Payment) -> dict[str, object]:
    return {
        "id": p.id,
        "order_id": p.order_id,
        "user_id": p.user_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status.value,
        "refunded_amount": p.refunded_amount,
        "reason": p.reason,
        "provider_reference": p.provider_reference,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }
