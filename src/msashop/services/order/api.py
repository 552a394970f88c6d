"""HTTP in: the order API (the gateway maps /api/orders to /orders)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.chassis.auth import AdminUser, CurrentUser
from msashop.chassis.dependencies import Client, PageNumber, PageSize, Uow, get_service
from msashop.chassis.idempotency import fingerprint
from msashop.chassis.idempotent_requests import (
    IDEMPOTENCY_RESPONSES,
    Idempotency,
    IdempotencyKey,
    Recorder,
    respond_idempotently,
)
from msashop.chassis.responses import ADMIN, errors
from msashop.services.order.composition import compose, parse_expand
from msashop.services.order.db import OrderViews, SagaRepository
from msashop.services.order.domain import MAX_LINES, MAX_QUANTITY, Order, OrderStatus, ShippingAddress
from msashop.services.order.handlers import orders, store
from msashop.services.order.handlers.saga import Orchestrator
from msashop.services.order.projections import OrdersProjection
from msashop.services.order.read_model import OrderView
from msashop.services.order.shipping import ShippingQuotes

router = APIRouter(prefix="/orders", tags=["orders"])

Id = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    # The client names products and quantities; prices, totals and statuses are ours to set.
    model_config = ConfigDict(extra="forbid")


class ItemIn(Strict):
    product_id: Id
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class PaymentIn(Strict):
    token: str = Field(min_length=1, max_length=200)


class AddressIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Za-z]{2}$")


class PlaceOrderIn(Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_LINES)
    payment: PaymentIn
    shipping_address: AddressIn


class LineOut(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price: float
    line_total: float


class AddressOut(BaseModel):
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str


class OrderOut(BaseModel):
    id: str
    user_id: str
    status: OrderStatus
    status_reason: str | None
    items: list[LineOut]
    shipping_cost: float
    total: float  # the items' line totals plus shipping_cost
    currency: str
    shipping_address: AddressOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, o: OrderView) -> OrderOut:
        a = o.shipping_address
        return cls(
            id=o.id,
            user_id=o.user_id,
            status=OrderStatus(o.status),
            status_reason=o.status_reason,
            items=[
                LineOut(
                    product_id=line.product_id,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price=float(line.unit_price),
                    line_total=float(line.line_total),
                )
                for line in o.lines
            ],
            shipping_cost=float(o.shipping_cost),
            total=float(o.total),
            currency=o.currency,
            shipping_address=AddressOut(
                name=a["name"],
                line1=a["line1"],
                line2=a.get("line2"),
                city=a["city"],
                postal_code=a["postal_code"],
                country=a["country"],
            ),
            created_at=o.created_at,
            updated_at=o.updated_at,
        )

    @classmethod
    def of_order(cls, o: Order) -> OrderOut:
        """The write side's order (what a command just did), in the same shape."""
        return cls.of(
            OrderView(
                id=o.id,
                user_id=o.user_id,
                status=o.status.value,
                status_reason=o.status_reason,
                lines=tuple(o.lines),  # type: ignore[arg-type]  # same fields as LineView
                shipping_cost=o.shipping_cost,
                currency=o.currency,
                shipping_address=o.shipping_address.to_data(),
                created_at=o.created_at,
                updated_at=o.updated_at,
                version=o.version,
            )
        )


class ComposedLineOut(LineOut):
    product: dict[str, Any] | None = None  # the product service's product (null: unknown or down)


class ComposedOrderOut(OrderOut):
    """An order with `?expand=user,products`: its buyer and each line's product, from their services."""

    items: list[ComposedLineOut]  # type: ignore[assignment]  # the same lines, plus `product`
    user: dict[str, Any] | None = None
    degraded: bool | None = None


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    page: int
    page_size: int


class StatusTotals(BaseModel):
    count: int
    revenue: float


class DayTotals(BaseModel):
    day: str
    count: int
    revenue: float  # of the day's orders that are CONFIRMED


class Analytics(BaseModel):
    by_status: dict[str, StatusTotals]
    by_day: list[DayTotals]


class StepOut(BaseModel):
    name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class SagaOut(BaseModel):
    saga_id: str
    order_id: str
    status: str
    current_step: str
    deadline_at: datetime  # when the step being waited for times out (or is tried again)
    steps: list[StepOut]


class RebuildOut(BaseModel):
    events: int
    orders: int
    position: int


def get_orchestrator(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


Saga = Annotated[Orchestrator, Depends(get_orchestrator)]


def get_shipping_quotes(request: Request) -> ShippingQuotes:
    """The shipping port main.py put on the app (a fake in tests that want one)."""
    quotes: ShippingQuotes = request.app.state.shipping_quotes
    return quotes


@router.post("", response_model=OrderOut, status_code=202, responses=IDEMPOTENCY_RESPONSES)
async def place_order(
    body: PlaceOrderIn,
    user: CurrentUser,
    client: Client,
    shipping: Annotated[ShippingQuotes, Depends(get_shipping_quotes)],
    orchestrator: Saga,
    request: Request,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """With an `Idempotency-Key` (per user, 24 h): the same body again answers the first answer
    byte for byte (`Idempotent-Replayed: true`), another body is 422 `idempotency_key_reused`, a
    repeat while the first still runs is 409 `idempotency_key_in_progress`."""
    service = get_service(request)
    address = body.shipping_address
    command = orders.PlaceOrder(
        user_id=user.user_id,
        items=[(item.product_id, item.quantity) for item in body.items],
        shipping_address=ShippingAddress(
            name=address.name,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country=address.country.upper(),
        ),
        payment_token=body.payment.token,
    )

    async def handle(recorder: Recorder) -> OrderOut:
        async def record(session: AsyncSession, order: Order) -> None:
            await recorder.record(session, OrderOut.of_order(order))  # commits with the order

        order = await orders.place_order(
            service.unit_of_work, client, shipping, command, orchestrator, before_commit=record
        )
        return OrderOut.of_order(order)

    return await respond_idempotently(
        idempotency,
        idempotency_key,
        scope=user.user_id,
        operation="POST /orders",
        fingerprint=fingerprint(body),
        status_code=202,
        handle=handle,
    )


@router.get("", response_model=OrderPage)
async def list_my_orders(
    uow: Uow,
    user: CurrentUser,
    status: OrderStatus | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> OrderPage:
    async with uow:
        found, total = await OrderViews(uow.session).list_for_user(
            user.user_id, status=status, page=page, page_size=page_size
        )
    return OrderPage(items=[OrderOut.of(o) for o in found], total=total, page=page, page_size=page_size)


# Declared before /{order_id} so "analytics" is never taken for an order id.
@router.get("/analytics", response_model=Analytics, responses=ADMIN)
async def analytics(uow: Uow, _: AdminUser) -> Analytics:
    async with uow:
        repo = OrderViews(uow.session)
        by_status = await repo.totals_by_status()
        by_day = await repo.totals_by_day()
    empty: dict[str, Any] = {"count": 0, "revenue": 0.0}
    return Analytics(
        by_status={
            s.value: StatusTotals(count=by_status[s][0], revenue=float(by_status[s][1]))
            if s in by_status
            else StatusTotals(**empty)
            for s in OrderStatus
        },
        by_day=[DayTotals(day=day, count=count, revenue=float(revenue)) for day, count, revenue in by_day],
    )


@router.get("/{order_id}", response_model=ComposedOrderOut, response_model_exclude_unset=True)
async def get_order(
    order_id: str,
    uow: Uow,
    user: CurrentUser,
    client: Client,
    request: Request,
    expand: Annotated[str | None, Query(max_length=100, description="user,products")] = None,
) -> dict[str, Any]:
    """The order; `?expand=user,products` adds its buyer and products (one batch call each)."""
    wanted = parse_expand(expand)
    async with uow:
        order = orders.visible_to(user, await OrderViews(uow.session).get(order_id))
    body = OrderOut.of(order).model_dump(mode="json")
    if not wanted:
        return body
    return await compose(body, wanted, client, request.headers.get("authorization"))


@router.post("/{order_id}/cancel", response_model=OrderOut, status_code=202, responses=errors(409))
async def cancel_order(order_id: str, request: Request, user: CurrentUser, orchestrator: Saga) -> OrderOut:
    order = await store.committed_retrying_on_conflict(
        get_service(request).unit_of_work, lambda uow: orders.cancel_order(uow, orchestrator, order_id, user)
    )
    return OrderOut.of_order(order)


@router.post("/{order_id}/ship", response_model=OrderOut, status_code=202, responses=errors(403, 409))
async def ship_order(order_id: str, request: Request, _: AdminUser) -> OrderOut:
    """CONFIRMED -> SHIPPED (admin); a shipped order can no longer be cancelled."""
    order = await store.committed_retrying_on_conflict(
        get_service(request).unit_of_work, lambda uow: orders.ship_order(uow, order_id)
    )
    return OrderOut.of_order(order)


@router.get("/{order_id}/saga", response_model=SagaOut)
async def get_saga(order_id: str, uow: Uow, user: CurrentUser) -> SagaOut:
    async with uow:
        orders.visible_to(user, await OrderViews(uow.session).get(order_id))
        saga = await SagaRepository(uow.session).for_order(order_id)
    assert saga is not None  # every order is stored with its saga
    return SagaOut(
        saga_id=saga.id,
        order_id=saga.order_id,
        status=saga.status.value,
        current_step=saga.step.value,
        deadline_at=saga.deadline_at,
        steps=[
            StepOut(
                name=s.name.value,
                status=s.status.value,
                started_at=s.started_at,
                finished_at=s.finished_at,
                error=s.error,
            )
            for s in saga.steps
        ],
    )


# Per-service admin API, reached through the gateway at /api/admin/projections/order/...
admin_router = APIRouter(prefix="/admin/projections", tags=["admin"], responses=ADMIN)


@admin_router.post("/rebuild", response_model=RebuildOut)
async def rebuild_projections(uow: Uow, _: AdminUser) -> RebuildOut:
    """Recompute every read model from the event store (`msashop projections rebuild orders`)."""
    async with uow:
        report = await OrdersProjection(uow.session).rebuild()
        await uow.commit()
    return RebuildOut(events=report.events, orders=report.orders, position=report.position)
