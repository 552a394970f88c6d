"""RPC in: `shipping.calculate` request body -> domain rule -> `ShippingQuote` reply body.

Raising answers the caller with an error (the bus turns it into `RpcError` on their side):
a body that is not a valid request, a currency we do not quote in, an impossible parcel.
"""

from __future__ import annotations

from typing import Any

import structlog

from msashop.chassis.bus.port import Responder
from msashop.contracts.events import ShippingQuote, ShippingQuoteRequest
from msashop.services.shipping import domain
from msashop.services.shipping.config import ShippingSettings

log = structlog.get_logger()


def calculate(body: dict[str, Any], settings: ShippingSettings) -> dict[str, Any]:
    request = ShippingQuoteRequest.model_validate(body)
    if request.currency != settings.currency:
        raise domain.InvalidShipment(f"shipping is quoted in {settings.currency} only")
    found = domain.quote(
        country=request.country,
        items=[domain.Item(i.product_id, i.quantity, i.weight_kg) for i in request.items],
        subtotal=request.subtotal,
        currency=settings.currency,
        free_over=settings.free_shipping_over,
    )
    log.info("shipping.quoted", country=request.country.upper(), zone=found.zone.value, cost=str(found.cost))
    reply = ShippingQuote(
        cost=found.cost,
        currency=found.currency,
        service_level=found.service_level,
        estimated_days=found.estimated_days,
    )
    return reply.model_dump(mode="json")


def responder(settings: ShippingSettings) -> Responder:
    async def calculate_shipping(body: dict[str, Any]) -> dict[str, Any]:
        return calculate(body, settings)

    return calculate_shipping
