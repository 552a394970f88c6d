"""Inventory commands and events: read the rows, apply the domain rule, queue the reply.

Each handler runs in the unit of work the chassis opened (inbox claim made); it never commits.
A reply's event id derives from the command's, so handling the same command twice queues it once.
"""

from __future__ import annotations

import structlog

from msashop.chassis.errors import NotFound, Unprocessable
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope, deterministic_id, wrap
from msashop.contracts.events import (
    CommitStock,
    Payload,
    ProductCreated,
    ReleaseStock,
    ReserveStock,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from msashop.services.inventory.db import InventoryRepository
from msashop.services.inventory.domain import (
    InvalidStock,
    Line,
    OutOfStock,
    Reservation,
    ReservationStatus,
    Stock,
)

log = structlog.get_logger()
SOURCE = "inventory"


def _reply(uow: UnitOfWork, payload: Payload, order_id: str, cause: Envelope) -> None:
    uow.publish(
        wrap(
            payload,
            source=SOURCE,
            key=order_id,
            cause=cause,
            event_id=deterministic_id(SOURCE, cause.id, payload.subject),
        )
    )


def _outcome(reservation: Reservation) -> Payload:
    """What a reserve command for an order that already has a reservation is answered."""
    if reservation.status is ReservationStatus.RELEASED:
        return StockReservationFailed(order_id=reservation.order_id, reason="released")
    return StockReserved(order_id=reservation.order_id)


async def create_stock_row(envelope: Envelope, uow: UnitOfWork) -> None:
    event = ProductCreated.model_validate(envelope.data)
    try:
        item = Stock(product_id=event.product_id, available=event.initial_stock)
    except InvalidStock:
        log.warning("stock.invalid_initial_stock", product_id=event.product_id)
        return
    if await InventoryRepository(uow.session).add_stock_if_missing(item):
        log.info("stock.created", product_id=item.product_id, available=item.available)


async def reserve_stock(envelope: Envelope, uow: UnitOfWork) -> None:
    cmd = ReserveStock.model_validate(envelope.data)
    repo = InventoryRepository(uow.session)
    existing = await repo.get_reservation(cmd.order_id, lock=True)
    if existing is not None:
        log.info("stock.reserve_answered_again", order_id=cmd.order_id, status=existing.status)
        _reply(uow, _outcome(existing), cmd.order_id, envelope)
        return
    lines = [Line(line.product_id, line.quantity) for line in cmd.lines]
    stock = await repo.get_stocks(sorted({line.product_id for line in lines}), lock=True)
    try:
        reservation = Reservation.place(cmd.order_id, lines, stock)
    except OutOfStock as exc:
        log.info("stock.reservation_failed", order_id=cmd.order_id, product_id=exc.product_id)
        _reply(
            uow,
            StockReservationFailed(order_id=cmd.order_id, reason="out_of_stock", product_id=exc.product_id),
            cmd.order_id,
            envelope,
        )
        return
    except InvalidStock as exc:
        log.warning("stock.reservation_invalid", order_id=cmd.order_id, error=str(exc))
        _reply(
            uow,
            StockReservationFailed(order_id=cmd.order_id, reason="invalid_quantity"),
            cmd.order_id,
            envelope,
        )
        return
    await repo.save_stocks([stock[pid] for pid in reservation.product_ids])
    await repo.add_reservation(reservation)
    log.info("stock.reserved", order_id=cmd.order_id, lines=len(reservation.lines))
    _reply(uow, StockReserved(order_id=cmd.order_id), cmd.order_id, envelope)


async def commit_stock(envelope: Envelope, uow: UnitOfWork) -> None:
    cmd = CommitStock.model_validate(envelope.data)
    repo = InventoryRepository(uow.session)
    reservation = await repo.get_reservation(cmd.order_id, lock=True)
    if reservation is None or reservation.status is ReservationStatus.RELEASED:
        log.warning(
            "stock.commit_ignored", order_id=cmd.order_id, status=reservation.status if reservation else None
        )
        return
    stock = await repo.get_stocks(sorted(reservation.product_ids), lock=True)
    if reservation.commit(stock):
        await repo.save_stocks(list(stock.values()))
        await repo.save_reservation(reservation)
        log.info("stock.committed", order_id=cmd.order_id)
    _reply(uow, StockCommitted(order_id=cmd.order_id), cmd.order_id, envelope)


async def release_stock(envelope: Envelope, uow: UnitOfWork) -> None:
    """Always answers `inventory.released`: after this command the order holds no stock."""
    cmd = ReleaseStock.model_validate(envelope.data)
    repo = InventoryRepository(uow.session)
    reservation = await repo.get_reservation(cmd.order_id, lock=True)
    if reservation is None:
        await repo.add_reservation(Reservation.released_before_reserved(cmd.order_id))
        log.info("stock.released_before_reserved", order_id=cmd.order_id)
    else:
        stock = await repo.get_stocks(sorted(reservation.product_ids), lock=True)
        if reservation.release(stock):
            await repo.save_stocks(list(stock.values()))
            await repo.save_reservation(reservation)
            log.info("stock.released", order_id=cmd.order_id)
    _reply(uow, StockReleased(order_id=cmd.order_id), cmd.order_id, envelope)


async def restock(uow: UnitOfWork, product_id: str, available: int) -> Stock:
    repo = InventoryRepository(uow.session)
    found = await repo.get_stocks([product_id], lock=True)
    if product_id not in found:
        raise NotFound("no stock row for this product")
    item = found[product_id]
    try:
        item.restock(available)
    except InvalidStock as exc:
        raise Unprocessable(str(exc)) from None
    await repo.save_stocks([item])
    log.info("stock.restocked", product_id=product_id, available=available)
    return item
