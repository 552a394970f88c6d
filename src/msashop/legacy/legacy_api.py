"""The old API under `/legacy` (the gateway serves it at `/api/legacy/...`), as its clients knew
it: abbreviated camelCase fields, amounts as text, `pageNo`/`pageSize`, and every success wrapped
in `{"resultCode": "0000", "resultMsg": "SUCCESS", ...}`. Errors use the platform's JSON error
body like every other service (the contract allows no other)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from msashop.chassis.auth import CurrentUser
from msashop.chassis.dependencies import Uow
from msashop.chassis.errors import NotFound
from msashop.legacy import orders
from msashop.legacy.catalog import Catalog, Product

router = APIRouter(prefix="/legacy", tags=["legacy"])


def _ok(**fields: Any) -> dict[str, Any]:
    return {"resultCode": "0000", "resultMsg": "SUCCESS", **fields}


def _product(p: Product) -> dict[str, Any]:
    return {
        "prodId": p.id,
        "prodCd": p.sku,
        "prodNm": p.name,
        "prodDesc": p.description,
        "catCd": p.category,
        "salePrc": f"{p.price:.2f}",
        "currCd": p.currency,
        "regDt": p.registered,
        "updDt": p.updated,
    }


def _order(o: orders.Order) -> dict[str, Any]:
    return {
        "ordNo": o.number,
        "custId": o.customer_id,
        "ordStatCd": o.status_code,
        "totAmt": f"{o.total:.2f}",
        "currCd": o.currency,
        "ordDt": o.ordered_at,
        "orderItems": [
            {
                "lineNo": line.line_no,
                "prodId": line.product_id,
                "prodNm": line.product_name,
                "ordQty": line.quantity,
                "unitPrc": f"{line.unit_price:.2f}",
            }
            for line in o.lines
        ],
    }


@router.get("/products")
async def list_products(
    uow: Uow,
    keyword: Annotated[str | None, Query(max_length=100)] = None,
    cat_cd: Annotated[str | None, Query(alias="catCd", max_length=64)] = None,
    page_no: Annotated[int, Query(alias="pageNo", ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with uow:
        items, total = await Catalog(uow.session).search(
            q=keyword, category=cat_cd, page=page_no, page_size=page_size
        )
    return _ok(totalCount=total, pageNo=page_no, list=[_product(p) for p in items])


@router.get("/products/{prod_id}")
async def get_product(prod_id: str, uow: Uow) -> dict[str, Any]:
    async with uow:
        product = await Catalog(uow.session).get(prod_id)
    if product is None:
        raise NotFound("product not found")
    return _ok(data=_product(product))


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    prod_id: str = Field(alias="prodId", min_length=1, max_length=36)
    ord_qty: int = Field(alias="ordQty", ge=1, le=999)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    order_items: list[OrderItemIn] = Field(alias="orderItems", min_length=1, max_length=50)


@router.post("/orders", status_code=201)
async def place_order(body: OrderIn, uow: Uow, user: CurrentUser) -> dict[str, Any]:
    items = [(item.prod_id, item.ord_qty) for item in body.order_items]
    async with uow:
        order = await orders.place_order(uow.session, user.user_id, items)
        await uow.commit()
    return _ok(data=_order(order))


@router.get("/orders/{ord_no}")
async def get_order(ord_no: str, uow: Uow, user: CurrentUser) -> dict[str, Any]:
    async with uow:
        order = await orders.get_order(uow.session, ord_no)
    # Someone else's order is as absent as a missing one (no way to probe order numbers).
    if order is None or (order.customer_id != user.user_id and not user.is_admin):
        raise NotFound("order not found")
    return _ok(data=_order(order))
