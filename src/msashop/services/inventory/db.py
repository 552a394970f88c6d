"""The stock and reservations tables and their repository.

Rows a command changes are read `FOR UPDATE` (in product id order, so two orders never wait on
each other in a cycle) so PostgreSQL serialises concurrent reservations of the same product.
SQLite ignores the clause: it already lets one writer in at a time (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.inventory.domain import Line, Reservation, ReservationStatus, Stock

metadata = sa.MetaData()

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("available", sa.Integer, nullable=False),
    sa.Column("reserved", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('RESERVED', 'COMMITTED', 'RELEASED')", name="ck_reservation_status"),
)


def _to_stock(row: sa.Row[Any]) -> Stock:
    return Stock(product_id=row.product_id, available=row.available, reserved=row.reserved)


def _to_reservation(row: sa.Row[Any]) -> Reservation:
    return Reservation(
        order_id=row.order_id,
        status=ReservationStatus(row.status),
        lines=[Line(str(item["product_id"]), int(item["quantity"])) for item in row.lines],
    )


class InventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- stock ---------------------------------------------------------------------------------
    async def get_stock(self, product_id: str) -> Stock | None:
        row = (await self.session.execute(sa.select(stock).where(stock.c.product_id == product_id))).first()
        return _to_stock(row) if row else None

    async def get_stocks(self, product_ids: list[str], *, lock: bool = False) -> dict[str, Stock]:
        query = sa.select(stock).where(stock.c.product_id.in_(product_ids)).order_by(stock.c.product_id)
        if lock:
            query = query.with_for_update()
        return {row.product_id: _to_stock(row) for row in await self.session.execute(query)}

    async def add_stock_if_missing(self, item: Stock) -> bool:
        if await self.get_stock(item.product_id) is not None:
            return False
        await self.session.execute(
            sa.insert(stock).values(
                product_id=item.product_id,
                available=item.available,
                reserved=item.reserved,
                updated_at=datetime.now(UTC),
            )
        )
        return True

    async def save_stocks(self, items: list[Stock]) -> None:
        now = datetime.now(UTC)
        for item in items:
            await self.session.execute(
                sa.update(stock)
                .where(stock.c.product_id == item.product_id)
                .values(available=item.available, reserved=item.reserved, updated_at=now)
            )

    # --- reservations --------------------------------------------------------------------------
    async def get_reservation(self, order_id: str, *, lock: bool = False) -> Reservation | None:
        query = sa.select(reservations).where(reservations.c.order_id == order_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _to_reservation(row) if row else None

    async def add_reservation(self, reservation: Reservation) -> None:
        await self.session.execute(sa.insert(reservations).values(**_columns(reservation)))

    async def save_reservation(self, reservation: Reservation) -> None:
        await self.session.execute(
            sa.update(reservations)
            .where(reservations.c.order_id == reservation.order_id)
            .values(**_columns(reservation))
        )


def _columns(r: Reservation) -> dict[str, object]:
    return {
        "order_id": r.order_id,
        "status": r.status.value,
        "lines": [{"product_id": line.product_id, "quantity": line.quantity} for line in r.lines],
        "updated_at": datetime.now(UTC),
    }
