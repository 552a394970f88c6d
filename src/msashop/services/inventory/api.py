"""HTTP in: stock levels (the gateway maps /api/inventory to /inventory)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from msashop.chassis.auth import AdminUser
from msashop.chassis.dependencies import Uow
from msashop.chassis.errors import NotFound
from msashop.chassis.responses import ADMIN
from msashop.services.inventory import handlers
from msashop.services.inventory.db import InventoryRepository
from msashop.services.inventory.domain import Stock

router = APIRouter(prefix="/inventory", tags=["inventory"])


class StockOut(BaseModel):
    product_id: str
    available: int
    reserved: int

    @classmethod
    def of(cls, s: Stock) -> StockOut:
        return cls(product_id=s.product_id, available=s.available, reserved=s.reserved)


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available: int = Field(ge=0, le=1_000_000)


@router.get("", response_model=list[StockOut])
async def get_stock_levels(
    uow: Uow, ids: Annotated[str, Query(max_length=4000, description="comma-separated product ids")]
) -> list[StockOut]:
    """Batch get: the known products among up to 100 ids, so callers never ask one by one."""
    wanted = [i for i in ids.split(",") if i][:100]
    async with uow:
        found = await InventoryRepository(uow.session).get_stocks(wanted)
    return [StockOut.of(s) for s in found.values()]


@router.get("/{product_id}", response_model=StockOut)
async def get_stock_level(product_id: str, uow: Uow) -> StockOut:
    async with uow:
        item = await InventoryRepository(uow.session).get_stock(product_id)
    if item is None:
        raise NotFound("no stock for this product")
    return StockOut.of(item)


@router.put("/{product_id}", response_model=StockOut, responses=ADMIN)
async def restock(product_id: str, body: StockChange, uow: Uow, _: AdminUser) -> StockOut:
    async with uow:
        item = await handlers.restock(uow, product_id, body.available)
        await uow.commit()
    return StockOut.of(item)
