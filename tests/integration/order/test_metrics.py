"""The order service's metrics: each placed order counted once with the guide's labels and its
value, and the saga gauges the "saga stuck" alert reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import REGISTRY

from msashop.services.order.metrics import payment_method, report_sagas
from tests.integration.order.conftest import Shop, order_body


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_placed_order_is_counted_with_its_status_payment_method_and_value(shop: Shop) -> None:
    created = _sample("orders_created_total", status="PENDING", payment_method="card")
    values, value_sum = _sample("order_value_dollars_count"), _sample("order_value_dollars_sum")

    order = await shop.place_ok(order_body(token="tok_visa"))

    assert _sample("orders_created_total", status="PENDING", payment_method="card") == created + 1
    assert _sample("order_value_dollars_count") == values + 1
    assert abs(_sample("order_value_dollars_sum") - value_sum - float(order["total"])) < 1e-6
    assert REGISTRY.get_sample_value("order_value_dollars_bucket", {"le": "5000.0"}) is not None


def test_the_payment_method_label_never_holds_the_token() -> None:
    assert payment_method("tok_visa") == "card"
    assert payment_method("tok_4242424242424242") == "card"
    assert payment_method("something-else") == "other"


async def test_saga_gauges_count_by_status_and_age_the_oldest_unfinished(shop: Shop) -> None:
    order = await shop.place_ok()
    assert (await shop.saga(order["id"]))["status"] == "RUNNING"
    placed = datetime.fromisoformat(order["created_at"])

    async with shop.service.unit_of_work() as uow:  # as the sweep sees it ten minutes on
        await report_sagas(uow.session, placed + timedelta(minutes=10))

    assert _sample("saga_status", status="RUNNING") == 1
    assert _sample("saga_status", status="COMPENSATION_FAILED") == 0
    assert abs(_sample("saga_oldest_age_seconds", status="RUNNING") - 600) < 1
    assert _sample("saga_oldest_age_seconds", status="COMPENSATING") == 0
