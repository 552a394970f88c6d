"""The product sync: product.created/updated/deleted from the product service into TB_PRODUCT.

The product service owns the catalog; the monolith keeps a copy so that both answer the same
for the same data while the strangler router moves traffic. Each handler runs in the chassis
unit of work with the inbox claim, so a redelivered message (same id) is skipped. A resent one
(new id, same change) writes the same values again, and an event older than the change last
applied (its timestamp before TB_PRODUCT.SYNC_TS) is skipped instead of undoing a newer change.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope
from msashop.contracts.events import ProductCreated, ProductDeleted, ProductUpdated
from msashop.legacy.catalog import Catalog, Product
from msashop.legacy.db import legacy_date, sync_stamp

log = structlog.get_logger()

# What a product.created 1.0 (before the event carried them) leaves in the row.
DEFAULT_CURRENCY = "USD"


async def product_created(envelope: Envelope, uow: UnitOfWork) -> None:
    event = ProductCreated.model_validate(envelope.data)
    catalog = Catalog(uow.session)
    stamp = sync_stamp(envelope.timestamp)
    current = await catalog.get(event.product_id, with_deleted=True)
    if current is not None and current.synced >= stamp:
        log.info("legacy.sync_skipped", product_id=event.product_id, reason="not newer")
        return
    now = legacy_date()
    product = Product(
        id=event.product_id,
        sku=event.sku,
        name=event.name,
        description=event.description or "",
        category=event.category or "",
        price=event.price,
        currency=event.currency or DEFAULT_CURRENCY,
        registered=current.registered if current else now,
        updated=now,
        deleted=False,
        synced=stamp,
    )
    if current is None:
        await catalog.insert(product)
    else:
        await catalog.update(product)
    log.info("legacy.product_synced", product_id=product.id, change="created")


async def product_updated(envelope: Envelope, uow: UnitOfWork) -> None:
    event = ProductUpdated.model_validate(envelope.data)
    catalog = Catalog(uow.session)
    stamp = sync_stamp(envelope.timestamp)
    current = await catalog.get(event.product_id, with_deleted=True)
    if current is None:
        # Per-key order means its product.created came first; without it there is no SKU to
        # build a row from. Logged, not retried: retrying would not make the creation appear.
        log.warning("legacy.sync_unknown_product", product_id=event.product_id, change="updated")
        return
    if current.deleted or current.synced > stamp:
        log.info("legacy.sync_skipped", product_id=event.product_id, reason="deleted or stale")
        return
    changed = replace(
        current,
        name=event.name,
        price=event.price,
        description=current.description if event.description is None else event.description,
        category=current.category if event.category is None else event.category,
        updated=legacy_date(),
        synced=stamp,
    )
    await catalog.update(changed)
    log.info("legacy.product_synced", product_id=changed.id, change="updated")


async def product_deleted(envelope: Envelope, uow: UnitOfWork) -> None:
    event = ProductDeleted.model_validate(envelope.data)
    catalog = Catalog(uow.session)
    stamp = sync_stamp(envelope.timestamp)
    current = await catalog.get(event.product_id, with_deleted=True)
    if current is None or current.deleted or current.synced > stamp:
        log.info("legacy.sync_skipped", product_id=event.product_id, reason="unknown, deleted or stale")
        return
    # Soft delete, the monolith's way: TB_ORDER_DTL rows keep their foreign key.
    await catalog.update(replace(current, deleted=True, updated=legacy_date(), synced=stamp))
    log.info("legacy.product_synced", product_id=current.id, change="deleted")
