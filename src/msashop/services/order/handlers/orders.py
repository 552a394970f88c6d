"""Order commands from the API: place, cancel, ship, and who may see an order.

Idempotency keys on placing are the API's (the chassis store): a replay never reaches `place_order`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import InvalidOperation
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.auth import Principal
from msashop.chassis.errors import Conflict, NotFound, Unprocessable, UpstreamUnavailable
from msashop.chassis.service_client import ServiceClient
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.services.order import domain
from msashop.services.order.db import SagaRepository
from msashop.services.order.domain import (
    CatalogEntry,
    InvalidOrder,
    InvalidTransition,
    Order,
    Saga,
    ShippingAddress,
)
from msashop.services.order.handlers import store
from msashop.services.order.handlers.saga import Orchestrator
from msashop.services.order.metrics import record_order
from msashop.services.order.read_model import OrderView
from msashop.services.order.shipping import ShippingQuotes, ShippingUnavailable

log = structlog.get_logger()
Viewable = TypeVar("Viewable", Order, OrderView)


@dataclass(frozen=True)
class PlaceOrder:
    user_id: str
    items: list[tuple[str, int]]
    shipping_address: ShippingAddress
    payment_token: str


# Called in the placing transaction, before its commit: the API stores its answer there (an
# idempotency key's answer commits with the order, or neither does).
BeforeCommit = Callable[[AsyncSession, Order], Awaitable[None]]


async def fetch_catalog(client: ServiceClient, product_ids: list[str]) -> dict[str, CatalogEntry]:
    """Names and prices of the products, in ONE call to the product service (no N+1)."""
    found: Any = await client.get("product", "/products/batch", params={"ids": ",".join(product_ids)})
    try:
        return {
            str(p["id"]): CatalogEntry(
                str(p["id"]), str(p["name"]), domain.money(p["price"]), str(p["currency"])
            )
            for p in found
        }
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise UpstreamUnavailable("the product service gave an answer we cannot read") from exc


async def place_order(
    new_uow: Callable[[], UnitOfWork],
    client: ServiceClient,
    shipping: ShippingQuotes,
    command: PlaceOrder,
    orchestrator: Orchestrator,
    before_commit: BeforeCommit | None = None,
) -> Order:
    """Price the items and the shipping, store the order with its saga and queue the first saga
    step, in one transaction. No shipping quote, no order (503 `shipping_unavailable`).
    """
    try:
        quantities = domain.merge_items(command.items)
    except InvalidOrder as exc:
        raise Unprocessable(str(exc)) from None
    catalog = await fetch_catalog(client, list(quantities))
    now = datetime.now(UTC)
    try:
        order = domain.place_order(
            order_id=str(uuid.uuid4()),
            user_id=command.user_id,
            quantities=quantities,
            catalog=catalog,
            shipping_address=command.shipping_address,
            now=now,
        )
    except domain.UnknownProducts as exc:
        raise Unprocessable(
            str(exc), code="unknown_product", details={"product_ids": exc.product_ids}
        ) from None
    except InvalidOrder as exc:
        raise Unprocessable(str(exc)) from None
    quote = await shipping.quote(order)
    try:
        order.add_shipping(quote.cost, quote.currency)
    except InvalidOrder as exc:  # a quote we cannot use is no quote
        raise ShippingUnavailable(f"the shipping quote cannot be used: {exc}") from None
    order.place()
    saga = Saga.start(
        str(uuid.uuid4()), order.id, command.payment_token, now, orchestrator.policy.step_timeout
    )
    async with new_uow() as uow:
        await store.save(uow, order)
        await SagaRepository(uow.session).add(saga)
        orchestrator.start(uow, order, saga)
        if before_commit is not None:
            await before_commit(uow.session, order)
        await uow.commit()
    record_order(order.status.value, command.payment_token, float(order.total))
    log.info(
        "order.placed",
        order_id=order.id,
        total=str(order.total),
        shipping=str(order.shipping_cost),
        lines=len(order.lines),
    )
    return order


def visible_to(principal: Principal, order: Viewable | None) -> Viewable:
    """The order if the caller owns it or is an admin. Anyone else learns nothing: 404."""
    if order is None or not (principal.is_admin or order.user_id == principal.user_id):
        raise NotFound("order not found")
    return order


async def cancel_order(
    uow: UnitOfWork, orchestrator: Orchestrator, order_id: str, principal: Principal
) -> Order:
    """PENDING or CONFIRMED -> CANCELLED `cancelled_by_user`; refund if paid, release the stock."""
    saga = await SagaRepository(uow.session).for_order(order_id, for_update=True)
    order = visible_to(principal, await store.load(uow, order_id))
    if not order.can_cancel:
        raise Conflict(f"the order is already {order.status.value}", code="order_not_cancellable")
    assert saga is not None  # created in the same transaction as the order
    await orchestrator.cancel(uow, order, saga, reason="cancelled_by_user")
    return order


async def ship_order(uow: UnitOfWork, order_id: str) -> Order:
    """CONFIRMED -> SHIPPED (admin): from now on the order can no longer be cancelled."""
    order = await store.load(uow, order_id)
    if order is None:
        raise NotFound("order not found")
    try:
        order.ship(datetime.now(UTC))
    except InvalidTransition as exc:
        raise Conflict(str(exc), code="order_not_shippable") from None
    await store.save(uow, order)
    log.info("order.shipped", order_id=order_id)
    return order
