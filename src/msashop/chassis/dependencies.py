"""FastAPI dependencies a service's routes use: `Uow` for a transaction, `Client` for calls out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request

from msashop.chassis.service_client import ServiceClient
from msashop.chassis.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from msashop.chassis.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def new_unit_of_work(request: Request) -> UnitOfWork:
    return get_service(request).unit_of_work()


def get_client(request: Request) -> ServiceClient:
    return get_service(request).client


Uow = Annotated[UnitOfWork, Depends(new_unit_of_work)]
Client = Annotated[ServiceClient, Depends(get_client)]


# Bounded so the offset fits a database integer (an unbounded page was a 500 on SQLite).
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=100, description="items per page, 1-100")]
