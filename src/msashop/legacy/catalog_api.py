"""The migrating path: `/products` answered from TB_PRODUCT in the product service's shape.

The strangler router sends a share of `GET /api/products...` here and the rest to the product
service, so for the same data every answer here must equal the product service's, byte for byte:
same fields in the same order, same filters, same pagination and ordering, same errors. Writes
stay with the product service (the owner); this router has no POST, PUT or DELETE.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from msashop.chassis.dependencies import PageNumber, PageSize, Uow
from msashop.chassis.errors import NotFound
from msashop.legacy.catalog import Catalog, Product

router = APIRouter(prefix="/products", tags=["products (migrating path)"])


class ProductOut(BaseModel):
    # Field order is the product service's (services/product/api.py): the JSON text depends on it.
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: float
    currency: str

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            id=p.id,
            sku=p.sku,
            name=p.name,
            description=p.description,
            category=p.category,
            price=float(p.price),
            currency=p.currency,
        )


class ProductPage(BaseModel):
    items: list[ProductOut]
    total: int
    page: int
    page_size: int


@router.get("", response_model=ProductPage)
async def list_products(
    uow: Uow,
    q: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> ProductPage:
    async with uow:
        items, total = await Catalog(uow.session).search(
            q=q, category=category, page=page, page_size=page_size
        )
    return ProductPage(items=[ProductOut.of(p) for p in items], total=total, page=page, page_size=page_size)


@router.get("/batch", response_model=list[ProductOut])
async def get_products_by_ids(
    uow: Uow, ids: Annotated[str, Query(max_length=4000, description="comma-separated ids")]
) -> list[ProductOut]:
    wanted = [i for i in ids.split(",") if i][:100]
    async with uow:
        found = await Catalog(uow.session).get_many(wanted)
    return [ProductOut.of(p) for p in found]


@router.get("/{product_id}", response_model=ProductOut)
async def get_product(product_id: str, uow: Uow) -> ProductOut:
    async with uow:
        product = await Catalog(uow.session).get(product_id)
    if product is None:
        raise NotFound("product not found")
    return ProductOut.of(product)
