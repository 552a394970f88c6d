"""Catalog commands: each changes products and queues the matching event in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import structlog

from msashop.chassis.errors import Conflict, NotFound, Unprocessable
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import wrap
from msashop.contracts.events import ProductCreated, ProductDeleted, ProductUpdated
from msashop.services.product.db import ProductRepository
from msashop.services.product.domain import InvalidProduct, Product
from msashop.services.product.seed import CATALOG

log = structlog.get_logger()
SOURCE = "product"


def _build(**fields: object) -> Product:
    try:
        return Product(**fields)  # type: ignore[arg-type]
    except InvalidProduct as exc:
        raise Unprocessable(str(exc)) from None


async def create_product(
    uow: UnitOfWork,
    *,
    sku: str,
    name: str,
    description: str,
    category: str,
    price: Decimal,
    initial_stock: int = 0,
) -> Product:
    repo = ProductRepository(uow.session)
    if await repo.sku_exists(sku):
        raise Conflict(f"a product with sku {sku!r} exists")
    product = _build(
        id=str(uuid.uuid4()), sku=sku, name=name, description=description, category=category, price=price
    )
    await repo.add(product)
    uow.publish(
        wrap(
            ProductCreated(
                product_id=product.id,
                sku=sku,
                name=name,
                price=price,
                initial_stock=initial_stock,
                description=description,
                category=category,
                currency=product.currency,
            ),
            source=SOURCE,
            key=product.id,
        )
    )
    return product


async def update_product(uow: UnitOfWork, product_id: str, **changes: object) -> Product:
    repo = ProductRepository(uow.session)
    current = await repo.get(product_id)
    if current is None:
        raise NotFound("product not found")
    fields = {k: v for k, v in changes.items() if v is not None}
    try:
        product = replace(current, **fields)  # type: ignore[arg-type]
    except InvalidProduct as exc:
        raise Unprocessable(str(exc)) from None
    await repo.update(product)
    uow.publish(
        wrap(
            ProductUpdated(
                product_id=product.id,
                name=product.name,
                price=product.price,
                description=product.description,
                category=product.category,
            ),
            source=SOURCE,
            key=product.id,
        )
    )
    return product


async def delete_product(uow: UnitOfWork, product_id: str) -> None:
    repo = ProductRepository(uow.session)
    if await repo.get(product_id) is None:
        raise NotFound("product not found")
    await repo.delete(product_id)
    uow.publish(wrap(ProductDeleted(product_id=product_id), source=SOURCE, key=product_id))


async def seed_catalog(uow: UnitOfWork) -> int:
    """Create the demo catalog once: only into an empty table."""
    if await ProductRepository(uow.session).count() > 0:
        return 0
    for item in CATALOG:
        await create_product(uow, **item)  # type: ignore[arg-type]
    log.info("catalog.seeded", products=len(CATALOG))
    return len(CATALOG)
