"""HTTP in: the catalog API (the gateway maps /api/products to /products)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from msashop.chassis.auth import AdminUser
from msashop.chassis.dependencies import PageNumber, PageSize, Uow
from msashop.chassis.errors import NotFound
from msashop.chassis.responses import ADMIN, errors
from msashop.services.product import handlers
from msashop.services.product.db import ProductRepository
from msashop.services.product.domain import Product

router = APIRouter(prefix="/products", tags=["products"])

Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]


class ProductOut(BaseModel):
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


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str = Field(min_length=1, max_length=64)
    price: Money
    initial_stock: int = Field(default=0, ge=0, le=1_000_000)


class ProductChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    price: Money | None = None


@router.get("", response_model=ProductPage)
async def list_products(
    uow: Uow,
    q: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> ProductPage:
    async with uow:
        items, total = await ProductRepository(uow.session).search(
            q=q, category=category, page=page, page_size=page_size
        )
    return ProductPage(items=[ProductOut.of(p) for p in items], total=total, page=page, page_size=page_size)


@router.get("/batch", response_model=list[ProductOut])
async def get_products_by_ids(
    uow: Uow, ids: Annotated[str, Query(max_length=4000, description="comma-separated ids")]
) -> list[ProductOut]:
    """Batch get by ids, so callers never make a call per item (no N+1)."""
    wanted = [i for i in ids.split(",") if i][:100]
    async with uow:
        found = await ProductRepository(uow.session).get_many(wanted)
    return [ProductOut.of(p) for p in found]


@router.get("/{product_id}", response_model=ProductOut)
async def get_product(product_id: str, uow: Uow) -> ProductOut:
    async with uow:
        product = await ProductRepository(uow.session).get(product_id)
    if product is None:
        raise NotFound("product not found")
    return ProductOut.of(product)


@router.post("", response_model=ProductOut, status_code=201, responses=errors(403, 409))
async def create_product(body: ProductIn, uow: Uow, _: AdminUser) -> ProductOut:
    async with uow:
        product = await handlers.create_product(uow, **body.model_dump())
        await uow.commit()
    return ProductOut.of(product)


@router.put("/{product_id}", response_model=ProductOut, responses=ADMIN)
async def update_product(product_id: str, body: ProductChange, uow: Uow, _: AdminUser) -> ProductOut:
    async with uow:
        product = await handlers.update_product(uow, product_id, **body.model_dump())
        await uow.commit()
    return ProductOut.of(product)


@router.delete("/{product_id}", status_code=204, responses=ADMIN)
async def delete_product(product_id: str, uow: Uow, _: AdminUser) -> Response:
    async with uow:
        await handlers.delete_product(uow, product_id)
        await uow.commit()
    return Response(status_code=204)
