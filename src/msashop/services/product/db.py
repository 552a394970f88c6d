"""The product table and its repository."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.product.domain import Product

metadata = sa.MetaData()

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("category", sa.String(64), nullable=False, index=True),
    sa.Column("price", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
)


def _to_product(row: sa.Row[Any]) -> Product:
    return Product(
        id=row.id,
        sku=row.sku,
        name=row.name,
        description=row.description,
        category=row.category,
        price=Decimal(row.price),
        currency=row.currency,
    )


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_id: str) -> Product | None:
        row = (await self.session.execute(sa.select(products).where(products.c.id == product_id))).first()
        return _to_product(row) if row else None

    async def get_many(self, ids: list[str]) -> list[Product]:
        rows = await self.session.execute(sa.select(products).where(products.c.id.in_(ids)))
        return [_to_product(r) for r in rows]

    async def sku_exists(self, sku: str) -> bool:
        found = await self.session.scalar(sa.select(products.c.id).where(products.c.sku == sku))
        return found is not None

    async def search(
        self, *, q: str | None, category: str | None, page: int, page_size: int
    ) -> tuple[list[Product], int]:
        where = []
        if q:
            pattern = f"%{q.lower()}%"
            where.append(
                sa.or_(
                    sa.func.lower(products.c.name).like(pattern),
                    sa.func.lower(products.c.description).like(pattern),
                )
            )
        if category:
            where.append(products.c.category == category)
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(products).where(*where))
        rows = await self.session.execute(
            sa.select(products)
            .where(*where)
            .order_by(products.c.name, products.c.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return [_to_product(r) for r in rows], int(total or 0)

    async def count(self) -> int:
        return int(await self.session.scalar(sa.select(sa.func.count()).select_from(products)) or 0)

    async def add(self, product: Product) -> None:
        await self.session.execute(sa.insert(products).values(**_columns(product)))

    async def update(self, product: Product) -> None:
        await self.session.execute(
            sa.update(products).where(products.c.id == product.id).values(**_columns(product))
        )

    async def delete(self, product_id: str) -> None:
        await self.session.execute(sa.delete(products).where(products.c.id == product_id))


def _columns(p: Product) -> dict[str, object]:
    return {
        "id": p.id,
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "price": p.price,
        "currency": p.currency,
    }
