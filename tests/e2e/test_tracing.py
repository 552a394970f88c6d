"""One checkout is one trace, across the gateway, the services and the bus, in the embedded trace
store that `msashop up` starts; the store's API and page are the admin's only."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import ShopClient, User

pytestmark = pytest.mark.e2e

# Spans leave each process in batches (the SDK's BatchSpanProcessor: every 5 s).
WITHIN_SECONDS = 45.0
CHECKOUT_SERVICES = {"gateway", "order", "product", "inventory", "payment", "shipping", "notification"}


def checkout_trace(shop: ShopClient, buyer: User, admin: str) -> dict[str, Any]:
    """The buyer's checkout trace once all of it is in (or whatever is in at the end)."""
    deadline = time.monotonic() + WITHIN_SECONDS
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        # The gateway puts the caller's user id on its span; the buyer's only trace through payment.
        params = {"attribute": f"user.id={buyer.id}", "service": "payment", "limit": 50}
        listed = shop.get("/api/traces", token=admin, params=params)
        assert listed.status_code == 200, listed.text
        ids = [t["trace_id"] for t in listed.json()["traces"]]
        if ids:
            assert len(ids) == 1, listed.json()
            answer = shop.get(f"/api/traces/{ids[0]}", token=admin)
            assert answer.status_code == 200, answer.text
            found = answer.json()
            # Each process exports on its own schedule: complete once every service is in and
            # every span's parent has arrived.
            complete = all(s["parent_found"] for s in found["spans"])
            if complete and CHECKOUT_SERVICES <= {p["service"] for p in found["processes"]}:
                return found
        time.sleep(1)
    return found


def test_a_checkout_is_one_trace_across_the_services_and_the_bus(shop: ShopClient) -> None:
    buyer = shop.register_and_login("Traced Buyer")
    [product] = shop.products_in_stock(1)
    final = shop.checkout(buyer.token, [(product["id"], 1)])
    assert final["status"] == "CONFIRMED", final

    trace = checkout_trace(shop, buyer, shop.admin_token())

    assert trace, "no trace of the checkout reached the trace store"
    services = {p["service"] for p in trace["processes"]}
    assert len(services) >= 6 and CHECKOUT_SERVICES <= services, services
    spans = {s["span_id"]: s for s in trace["spans"]}
    [root] = [s for s in trace["spans"] if s["parent_span_id"] is None]
    assert (root["service"], root["kind"], root["depth"]) == ("gateway", "server", 0)
    assert root["name"].startswith("POST "), root["name"]
    assert any(s["service"] == "order" and s["name"] == "POST /orders" for s in trace["spans"])
    for span in trace["spans"]:
        if span is not root:
            assert span["parent_span_id"] in spans, f"{span['service']} {span['name']}: parent missing"
            assert spans[span["parent_span_id"]]["depth"] == span["depth"] - 1
    # Across the bus: a consumer in one service under a producer in another.
    hops = {
        (spans[s["parent_span_id"]]["service"], s["service"])
        for s in trace["spans"]
        if s["kind"] == "consumer" and spans[s["parent_span_id"]]["kind"] == "producer"
    }
    assert any(producer != consumer for producer, consumer in hops), hops
    assert ("order", "payment") in hops or ("order", "inventory") in hops, hops


def test_traces_are_the_admins_only_and_the_page_is_served(shop: ShopClient, buyer: User) -> None:
    assert shop.get("/api/traces").status_code == 401
    assert shop.get("/api/traces", token=buyer.token).status_code == 403
    assert shop.get("/api/traces", token=shop.admin_token()).status_code == 200
    page = shop.get("/traces")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/traces.js" in page.text
    assert shop.get("/static/traces.js").status_code == 200
