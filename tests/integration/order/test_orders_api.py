"""Placing, reading and listing orders through the API (the saga's replies are in test_saga.py)."""

from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from msashop.contracts.events import PaymentCaptured, StockReserved
from msashop.services.order.db import orders

from .conftest import Shop, order_body


async def _order_count(shop: Shop) -> int:
    async with shop.service.unit_of_work() as uow:
        return int(await uow.session.scalar(sa.select(sa.func.count()).select_from(orders)) or 0)


async def test_placing_an_order_answers_202_pending_priced_by_the_catalog(shop: Shop) -> None:
    response = await shop.place(order_body(("p-mouse", 2), ("p-pen", 3), ("p-mouse", 1)))
    assert response.status_code == 202
    order = response.json()
    assert order["status"] == "PENDING" and order["status_reason"] is None
    assert order["user_id"] == "u1" and order["currency"] == "USD"
    assert order["items"] == [
        {"product_id": "p-mouse", "name": "Mouse", "quantity": 3, "unit_price": 19.99, "line_total": 59.97},
        {"product_id": "p-pen", "name": "Pen", "quantity": 3, "unit_price": 0.1, "line_total": 0.3},
    ]
    assert (order["shipping_cost"], order["total"]) == (4.5, 64.77)  # 60.27 of items + shipping
    assert order["shipping_address"]["country"] == "GB" and order["shipping_address"]["line2"] is None
    assert shop.products.calls == ["p-mouse,p-pen"]  # one batch call for all lines


async def test_placing_queues_order_created_and_the_reservation(shop: Shop) -> None:
    order = await shop.place_ok()
    [created] = shop.sent("order.created", order["id"])
    assert created.data["total"] == "44.48" and created.data["lines"][0]["quantity"] == 2
    assert created.data["shipping_cost"] == "4.50" and created.metadata.version == "1.1"
    [reserve] = shop.sent("inventory.reserve", order["id"])
    saga = await shop.saga(order["id"])
    assert reserve.data["idempotency_key"] == f"{saga['saga_id']}:reserve"
    assert reserve.data["lines"] == [{"product_id": "p-mouse", "quantity": 2, "unit_price": "19.99"}]


async def test_unknown_product_is_422_and_stores_nothing(shop: Shop) -> None:
    response = await shop.place(order_body(("p-mouse", 1), ("p-ghost", 1)))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_product"
    assert response.json()["error"]["details"] == {"product_ids": ["p-ghost"]}
    assert await _order_count(shop) == 0


async def test_product_service_down_is_503(shop: Shop) -> None:
    shop.products.down = True
    response = await shop.place()
    assert response.status_code == 503
    assert await _order_count(shop) == 0


def _with(**changes: Any) -> dict[str, Any]:
    body = order_body()
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return body


@pytest.mark.parametrize(
    "body",
    [
        _with(total=0.01),
        _with(status="CONFIRMED"),
        _with(items=[{"product_id": "p-mouse", "quantity": 1, "unit_price": 0.01}]),
        _with(items=[]),
        _with(items=[{"product_id": "p-mouse", "quantity": 0}]),
        _with(items=[{"product_id": "p-mouse", "quantity": 101}]),
        _with(items=[{"product_id": "p-mouse", "quantity": 60}, {"product_id": "p-mouse", "quantity": 60}]),
        _with(items=[{"product_id": f"p{i}", "quantity": 1} for i in range(51)]),
        _with(payment={"token": ""}),
        _with(shipping_address__country="GBR"),
        _with(shipping_address__city=""),
    ],
)
async def test_bad_order_input_is_422_and_stores_nothing(shop: Shop, body: dict[str, Any]) -> None:
    response = await shop.place(body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await _order_count(shop) == 0


async def test_placing_needs_a_user(shop: Shop) -> None:
    assert (await shop.client.post("/orders", json=order_body())).status_code == 401


def _orders_created() -> float:
    labels = {"status": "PENDING", "payment_method": "card"}
    return REGISTRY.get_sample_value("orders_created_total", labels) or 0.0


async def test_same_idempotency_key_and_body_answers_the_same_order(shop: Shop) -> None:
    created_before = _orders_created()
    first = await shop.place(key="k-1")
    await shop.settle()
    order_id = first.json()["id"]
    await shop.reply(StockReserved(order_id=order_id))
    await shop.reply(PaymentCaptured(order_id=order_id, payment_id="pay-1", amount=44.48))
    again = await shop.place(key="k-1")
    assert again.status_code == 202
    assert again.json() == first.json()  # the first answer, though the order is CONFIRMED by now
    assert (await shop.order(order_id))["status"] == "CONFIRMED"
    assert await _order_count(shop) == 1
    assert len(shop.products.calls) == 1
    assert _orders_created() == created_before + 1  # a replay is not a new order


async def test_same_idempotency_key_with_another_body_is_422(shop: Shop) -> None:
    assert (await shop.place(key="k-1")).status_code == 202
    response = await shop.place(order_body(("p-pen", 1)), key="k-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert await _order_count(shop) == 1


async def test_idempotency_keys_belong_to_one_user(shop: Shop) -> None:
    mine = await shop.place(key="k-1")
    theirs = await shop.place(key="k-1", user="u2")
    assert theirs.status_code == 202 and theirs.json()["id"] != mine.json()["id"]


async def test_idempotency_key_longer_than_200_is_422(shop: Shop) -> None:
    assert (await shop.place(key="k" * 201)).status_code == 422


async def test_someone_elses_order_is_404_but_an_admin_sees_it(shop: Shop) -> None:
    order = await shop.place_ok()
    for path in (f"/orders/{order['id']}", f"/orders/{order['id']}/saga"):
        assert (await shop.client.get(path, headers=shop.auth_headers("u2"))).status_code == 404
        assert (await shop.client.get(path, headers=shop.auth_headers("boss", "admin"))).status_code == 200
    cancel = await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.auth_headers("u2"))
    assert cancel.status_code == 404
    assert (await shop.order(order["id"]))["status"] == "PENDING"
    assert (await shop.client.get("/orders/nope", headers=shop.auth_headers("u1"))).status_code == 404


async def test_list_shows_my_orders_newest_first_filtered_and_paged(shop: Shop) -> None:
    ids = [(await shop.place_ok())["id"] for _ in range(3)]
    await shop.place_ok(user="u2")
    await shop.reply(StockReserved(order_id=ids[0]))
    await shop.reply(PaymentCaptured(order_id=ids[0], payment_id="pay-1", amount=44.48))

    listed = (await shop.client.get("/orders", headers=shop.auth_headers("u1"))).json()
    assert [o["id"] for o in listed["items"]] == ids[::-1]
    assert (listed["total"], listed["page"], listed["page_size"]) == (3, 1, 20)

    page = (
        await shop.client.get("/orders", params={"page": 2, "page_size": 2}, headers=shop.auth_headers("u1"))
    ).json()
    assert [o["id"] for o in page["items"]] == [ids[0]]

    confirmed = await shop.client.get(
        "/orders", params={"status": "CONFIRMED"}, headers=shop.auth_headers("u1")
    )
    assert [o["id"] for o in confirmed.json()["items"]] == [ids[0]]


@pytest.mark.parametrize("params", [{"status": "LOST"}, {"page": 0}, {"page_size": 101}])
async def test_bad_list_parameters_are_422(shop: Shop, params: dict[str, Any]) -> None:
    assert (
        await shop.client.get("/orders", params=params, headers=shop.auth_headers("u1"))
    ).status_code == 422


async def test_analytics_counts_and_revenue_by_status_and_day_for_admins(shop: Shop) -> None:
    confirmed = await shop.place_ok()
    await shop.place_ok(order_body(("p-pen", 5)))
    await shop.reply(StockReserved(order_id=confirmed["id"]))
    await shop.reply(PaymentCaptured(order_id=confirmed["id"], payment_id="pay-1", amount=44.48))

    assert (await shop.client.get("/orders/analytics", headers=shop.auth_headers("u1"))).status_code == 403
    response = await shop.client.get("/orders/analytics", headers=shop.auth_headers("boss", "admin"))
    assert response.status_code == 200
    report = response.json()
    assert report["by_status"] == {
        "PENDING": {"count": 1, "revenue": 5.0},
        "CONFIRMED": {"count": 1, "revenue": 44.48},
        "SHIPPED": {"count": 0, "revenue": 0.0},
        "CANCELLED": {"count": 0, "revenue": 0.0},
    }
    [today] = report["by_day"]
    assert today["day"] == confirmed["created_at"][:10]
    assert (today["count"], today["revenue"]) == (2, 44.48)


async def test_expand_composes_products_and_falls_back_for_a_missing_user_service(shop: Shop) -> None:
    order = await shop.place_ok()
    calls_before = len(shop.products.calls)
    response = await shop.client.get(
        f"/orders/{order['id']}", params={"expand": "user,products"}, headers=shop.auth_headers("u1")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["items"][0]["product"]["name"] == "Mouse"
    assert len(shop.products.calls) == calls_before + 1  # one batch call for every line
    # No user service runs here: the answer still comes, with the guide's fallback.
    assert body["user"] == {"id": "u1", "name": "Unknown User", "email": None}
    assert body["degraded"] is True
    plain = (await shop.client.get(f"/orders/{order['id']}", headers=shop.auth_headers("u1"))).json()
    assert "user" not in plain and "degraded" not in plain and "product" not in plain["items"][0]
    bad = await shop.client.get(
        f"/orders/{order['id']}", params={"expand": "reviews"}, headers=shop.auth_headers("u1")
    )
    assert bad.status_code == 422
