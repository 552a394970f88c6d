"""TB_PRODUCT read and written: the queries both APIs answer from, and the sync's writes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.legacy.db import TB_PRODUCT

LIVE = TB_PRODUCT.c.DEL_YN == "N"


@dataclass(frozen=True)
class Product:
    """One TB_PRODUCT row in plain words."""

    id: str
    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str
    registered: str
    updated: str
    deleted: bool
    synced: str


def _product(row: sa.Row[Any]) -> Product:
    return Product(
        id=row.PROD_ID,
        sku=row.PROD_CD,
        name=row.PROD_NM,
        description=row.PROD_DESC,
        category=row.CAT_CD,
        price=Decimal(row.SALE_PRC),
        currency=row.CURR_CD,
        registered=row.REG_DT,
        updated=row.UPD_DT,
        deleted=row.DEL_YN == "Y",
        synced=row.SYNC_TS,
    )


class Catalog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_id: str, *, with_deleted: bool = False) -> Product | None:
        query = sa.select(TB_PRODUCT).where(TB_PRODUCT.c.PROD_ID == product_id)
        row = (await self.session.execute(query if with_deleted else query.where(LIVE))).first()
        return _product(row) if row else None

    async def get_many(self, ids: list[str]) -> list[Product]:
        # By id: the order the product service's IN query over its primary key comes back in.
        rows = await self.session.execute(
            sa.select(TB_PRODUCT).where(TB_PRODUCT.c.PROD_ID.in_(ids), LIVE).order_by(TB_PRODUCT.c.PROD_ID)
        )
        return [_product(r) for r in rows]

    async def search(
        self, *, q: str | None, category: str | None, page: int, page_size: int
    ) -> tuple[list[Product], int]:
        """The product service's search, filter and order, exactly (the migrating path's answers
        must not depend on which side served them): `q` in name or description, any case, as a
        LIKE pattern; category exact; by name then id."""
        where = [LIVE]
        if q:
            pattern = f"%{q.lower()}%"
            where.append(
                sa.or_(
                    sa.func.lower(TB_PRODUCT.c.PROD_NM).like(pattern),
                    sa.func.lower(TB_PRODUCT.c.PROD_DESC).like(pattern),
                )
            )
        if category:
            where.append(TB_PRODUCT.c.CAT_CD == category)
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(TB_PRODUCT).where(*where))
        rows = await self.session.execute(
            sa.select(TB_PRODUCT)
            .where(*where)
            .order_by(TB_PRODUCT.c.PROD_NM, TB_PRODUCT.c.PROD_ID)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return [_product(r) for r in rows], int(total or 0)

    async def insert(self, product: Product) -> None:
        await self.session.execute(sa.insert(TB_PRODUCT).values(**_columns(product)))

    async def update(self, product: Product) -> None:
        await self.session.execute(
            sa.update(TB_PRODUCT).where(TB_PRODUCT.c.PROD_ID == product.id).values(**_columns(product))
        )


def _columns(p: Product) -> dict[str, object]:
    return {
        "PROD_ID": p.id,
        "PROD_CD": p.sku,
        "PROD_NM": p.name,
        "PROD_DESC": p.description,
        "CAT_CD": p.category,
        "SALE_PRC": p.price,
        "CURR_CD": p.currency,
        "DEL_YN": "Y" if p.deleted else "N",
        "REG_DT": p.registered,
        "UPD_DT": p.updated,
        "SYNC_TS": p.synced,
    }
