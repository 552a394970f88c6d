"""Shipping quotes for an order being placed: the port the handlers use and its bus adapter.

The handlers depend on `ShippingQuotes` only; main.py builds `BusShippingQuotes`, which asks the
shipping service over the bus (`shipping.calculate` request/reply). A missing, slow, failing or
unreadable answer is one error for the caller: 503 `shipping_unavailable`, nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import structlog
from pydantic import ValidationError

from msashop.chassis import bus_tracing
from msashop.chassis.bus.port import EventBus, RpcError, RpcTimeout
from msashop.chassis.errors import UpstreamUnavailable
from msashop.contracts.events import ShippingItem, ShippingQuote, ShippingQuoteRequest
from msashop.services.order.domain import Order

log = structlog.get_logger()


class ShippingUnavailable(UpstreamUnavailable):
    code = "shipping_unavailable"


@dataclass(frozen=True)
class Quote:
    cost: Decimal
    currency: str


class ShippingQuotes(Protocol):
    async def quote(self, order: Order) -> Quote:
        """What delivering the order's lines to its address costs; `ShippingUnavailable` if unknown."""


class BusShippingQuotes:
    def __init__(self, bus: EventBus | None, *, timeout: float) -> None:
        self.bus = bus
        self.timeout = timeout

    async def quote(self, order: Order) -> Quote:
        if self.bus is None:
            raise ShippingUnavailable("shipping cannot be priced: the order service has no message bus")
        address = order.shipping_address
        request = ShippingQuoteRequest(
            country=address.country,
            postal_code=address.postal_code,
            items=[ShippingItem(product_id=line.product_id, quantity=line.quantity) for line in order.lines],
            subtotal=order.subtotal,
            currency=order.currency,
        )
        subject = ShippingQuoteRequest.subject
        try:
            # The trace goes along in the request (the shipping service's span is a child of ours).
            body = request.model_dump(mode="json")
            reply = await bus_tracing.request(self.bus, subject, body, timeout=self.timeout)
            quote = ShippingQuote.model_validate(reply)
        except RpcTimeout:
            log.warning("shipping.timeout", order_id=order.id, timeout=self.timeout)
            raise ShippingUnavailable(
                f"the shipping service did not answer within {self.timeout:g} s; try again shortly"
            ) from None
        except RpcError as exc:
            log.warning("shipping.refused", order_id=order.id, error=str(exc))
            raise ShippingUnavailable("the shipping service could not price this order") from None
        except ValidationError as exc:
            log.warning("shipping.unreadable", order_id=order.id, error=str(exc))
            raise ShippingUnavailable("the shipping service gave an answer we cannot read") from None
        return Quote(quote.cost, quote.currency)
