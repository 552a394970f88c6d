"""Orders the monolith's way: one transaction reads prices from TB_PRODUCT and writes TB_ORDER
and TB_ORDER_DTL (no saga, no stock, no payment: that is what the new order service is for)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.errors import Unprocessable
from msashop.legacy.catalog import Catalog
from msashop.legacy.db import ORDER_RECEIVED, TB_ORDER, TB_ORDER_DTL, TB_PRODUCT, legacy_date


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    product_id: str
    product_name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Order:
    number: str
    customer_id: str
    status_code: str
    total: Decimal
    currency: str
    ordered_at: str
    lines: tuple[OrderLine, ...]


async def place_order(session: AsyncSession, customer_id: str, items: list[tuple[str, int]]) -> Order:
    """Price each (product id, quantity) from the catalog now and record the order."""
    products = {p.id: p for p in await Catalog(session).get_many(sorted({pid for pid, _ in items}))}
    missing = sorted({pid for pid, _ in items} - products.keys())
    if missing:
        raise Unprocessable("product not on sale", details={"prodIds": missing})
    currencies = {products[pid].currency for pid, _ in items}
    if len(currencies) > 1:
        raise Unprocessable("products in more than one currency")
    lines = tuple(
        OrderLine(n, pid, products[pid].name, qty, products[pid].price)
        for n, (pid, qty) in enumerate(items, start=1)
    )
    order = Order(
        number=str(uuid.uuid4()),
        customer_id=customer_id,
        status_code=ORDER_RECEIVED,
        total=sum((line.unit_price * line.quantity for line in lines), Decimal("0")),
        currency=currencies.pop(),
        ordered_at=legacy_date(),
        lines=lines,
    )
    await session.execute(
        sa.insert(TB_ORDER).values(
            ORD_NO=order.number,
            CUST_ID=order.customer_id,
            ORD_STAT_CD=order.status_code,
            TOT_AMT=order.total,
            CURR_CD=order.currency,
            ORD_DT=order.ordered_at,
        )
    )
    await session.execute(
        sa.insert(TB_ORDER_DTL),
        [
            {
                "ORD_NO": order.number,
                "LINE_NO": line.line_no,
                "PROD_ID": line.product_id,
                "ORD_QTY": line.quantity,
                "UNIT_PRC": line.unit_price,
            }
            for line in lines
        ],
    )
    return order


async def get_order(session: AsyncSession, number: str) -> Order | None:
    head = (await session.execute(sa.select(TB_ORDER).where(TB_ORDER.c.ORD_NO == number))).first()
    if head is None:
        return None
    # The monolith join: product names come from TB_PRODUCT (deleted products included).
    rows = await session.execute(
        sa.select(TB_ORDER_DTL, TB_PRODUCT.c.PROD_NM)
        .join(TB_PRODUCT, TB_PRODUCT.c.PROD_ID == TB_ORDER_DTL.c.PROD_ID)
        .where(TB_ORDER_DTL.c.ORD_NO == number)
        .order_by(TB_ORDER_DTL.c.LINE_NO)
    )
    return _order(head, list(rows))


def _order(head: sa.Row[Any], rows: list[sa.Row[Any]]) -> Order:
    return Order(
        number=head.ORD_NO,
        customer_id=head.CUST_ID,
        status_code=head.ORD_STAT_CD,
        total=Decimal(head.TOT_AMT),
        currency=head.CURR_CD,
        ordered_at=head.ORD_DT,
        lines=tuple(OrderLine(r.LINE_NO, r.PROD_ID, r.PROD_NM, r.ORD_QTY, Decimal(r.UNIT_PRC)) for r in rows),
    )
