"""The order service's domain: the event-sourced order aggregate, its events, the saga's state.

No I/O here: nothing from the api, db or handlers, no framework.
"""

from msashop.services.order.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderPlaced,
    OrderShipped,
    event_from,
)
from msashop.services.order.domain.order import InvalidTransition, Order, place_order
from msashop.services.order.domain.saga import (
    COMPENSATIONS,
    RESUMABLE,
    Saga,
    SagaStatus,
    SagaStep,
    Step,
    StepStatus,
)
from msashop.services.order.domain.values import (
    CENT,
    MAX_LINES,
    MAX_QUANTITY,
    CatalogEntry,
    InvalidOrder,
    OrderLine,
    OrderStatus,
    ShippingAddress,
    UnknownProducts,
    merge_items,
    money,
)

__all__ = [
    "CENT",
    "COMPENSATIONS",
    "MAX_LINES",
    "MAX_QUANTITY",
    "RESUMABLE",
    "CatalogEntry",
    "InvalidOrder",
    "InvalidTransition",
    "Order",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderEvent",
    "OrderLine",
    "OrderPlaced",
    "OrderShipped",
    "OrderStatus",
    "Saga",
    "SagaStatus",
    "SagaStep",
    "ShippingAddress",
    "Step",
    "StepStatus",
    "UnknownProducts",
    "event_from",
    "merge_items",
    "money",
    "place_order",
]
