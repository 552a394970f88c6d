"""Composition root of the shipping service: no database, one RPC responder, health via the chassis."""

from __future__ import annotations

from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.contracts.events import ShippingQuoteRequest
from msashop.services.shipping import handlers
from msashop.services.shipping.config import ShippingSettings


def create_service(settings: ShippingSettings | None = None, bus: EventBus | None = None) -> Service:
    settings = settings or ShippingSettings.load("shipping")
    service = Service(settings, bus=bus)
    service.on_request(ShippingQuoteRequest.subject, handlers.responder(settings))
    return service
