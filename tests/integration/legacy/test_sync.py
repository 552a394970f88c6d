"""The product sync: each change applied once, whatever the bus does with the messages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from msashop.contracts.envelope import wrap
from msashop.contracts.events import ProductCreated, ProductDeleted, ProductUpdated
from tests.service_harness import ServiceHarness


async def product(legacy: ServiceHarness, product_id: str) -> dict[str, object] | None:
    answer = await legacy.client.get(f"/products/{product_id}")
    return answer.json() if answer.status_code == 200 else None


def created(product_id: str = "p1", **fields: object) -> ProductCreated:
    base: dict[str, object] = {
        "product_id": product_id,
        "sku": "SKU-1",
        "name": "Lamp",
        "price": Decimal("10.00"),
        "description": "A lamp",
        "category": "home",
        "currency": "USD",
    }
    return ProductCreated.model_validate({**base, **fields})


async def test_a_redelivered_or_resent_event_changes_nothing_more(legacy: ServiceHarness) -> None:
    first = await legacy.deliver(created(), source="product")
    await legacy.bus.publish(first)  # redelivered: same id, skipped by the inbox
    update = await legacy.deliver(ProductUpdated(product_id="p1", name="Lamp 2", price=Decimal("12.50")))
    # The creation resent under a new id, after the update: older than what was applied, skipped.
    await legacy.bus.publish(first.model_copy(update={"id": "resent-creation"}))
    await legacy.bus.publish(update.model_copy(update={"id": "resent-update"}))
    assert legacy.bus.failures == []
    assert await product(legacy, "p1") == {
        "id": "p1",
        "sku": "SKU-1",
        "name": "Lamp 2",
        "description": "A lamp",
        "category": "home",
        "price": 12.5,
        "currency": "USD",
    }
    assert (await legacy.client.get("/products")).json()["total"] == 1


async def test_a_late_older_update_does_not_undo_a_newer_one(legacy: ServiceHarness) -> None:
    await legacy.deliver(created())
    newer = wrap(
        ProductUpdated(product_id="p1", name="New", price=Decimal("3.00")), source="product", key="p1"
    )
    older = wrap(
        ProductUpdated(product_id="p1", name="Old", price=Decimal("2.00")), source="product", key="p1"
    )
    older = older.model_copy(update={"timestamp": newer.timestamp - timedelta(seconds=1)})
    await legacy.bus.publish(newer)
    await legacy.bus.publish(older)
    assert (await product(legacy, "p1") or {})["name"] == "New"


async def test_a_deletion_holds_against_a_late_update(legacy: ServiceHarness) -> None:
    await legacy.deliver(created())
    update = wrap(
        ProductUpdated(product_id="p1", name="Late", price=Decimal("1.00")), source="product", key="p1"
    )
    await legacy.deliver(ProductDeleted(product_id="p1"))
    await legacy.bus.publish(update)
    assert await product(legacy, "p1") is None
    listing = (await legacy.client.get("/legacy/products")).json()
    assert listing["totalCount"] == 0


async def test_unknown_products_and_old_events_are_handled_without_failures(legacy: ServiceHarness) -> None:
    await legacy.deliver(ProductUpdated(product_id="ghost", name="x", price=Decimal("1.00")))
    await legacy.deliver(ProductDeleted(product_id="ghost"))
    assert await product(legacy, "ghost") is None
    # A product.created 1.0 (before the event carried description, category, currency).
    old = ProductCreated(product_id="p0", sku="OLD", name="Old one", price=Decimal("5.00"))
    envelope = wrap(old, source="product", key="p0")
    envelope.data = {
        k: v for k, v in envelope.data.items() if k not in ("description", "category", "currency")
    }
    envelope.metadata.version = "1.0"
    await legacy.bus.publish(envelope)
    assert legacy.bus.failures == []
    got = await product(legacy, "p0") or {}
    assert (got["description"], got["category"], got["currency"]) == ("", "", "USD")
    # A later 1.1 update fills in what it carries.
    await legacy.deliver(
        ProductUpdated(
            product_id="p0", name="Old one", price=Decimal("5.00"), category="misc", description="d"
        )
    )
    assert ((await product(legacy, "p0")) or {})["category"] == "misc"
