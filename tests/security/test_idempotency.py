"""Idempotency keys under attack and under races, on POST /orders (the order service in-process,
its real SQLite database, an in-memory bus, a fake product service that can hold a request).

What a duplicate gets, decided as Stripe does:
- while the first request with the key is still in flight: 409 `idempotency_key_in_progress`
  (never a second order, never a wait); the client retries and then gets
- after the first finished: the first answer, byte for byte, with `Idempotent-Replayed: true`;
- with another body, in flight or not: 422 `idempotency_key_reused`;
- after 24 h the key is new again; a failed first attempt (5xx) leaves the key free for a retry;
- keys are per user: another user's key never yields someone else's answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.idempotency import IdempotencyStore, fingerprint, idempotency_keys
from msashop.chassis.idempotent_requests import REPLAYED_HEADER
from msashop.contracts.events import ShippingQuoteRequest
from msashop.services.order.api import PlaceOrderIn
from msashop.services.order.config import OrderSettings
from msashop.services.order.db import orders
from msashop.services.order.main import create_service
from tests.integration.order.conftest import PRODUCTS, FakeProducts, FakeShipping, Shop, order_body
from tests.service_harness import running

REPLAYED = REPLAYED_HEADER.lower()


@dataclass
class HeldProducts(FakeProducts):
    """`hold()` makes the next batch request wait until `let_go()`: a first request in flight."""

    holding: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def hold(self) -> None:
        self.holding, self.arrived, self.released = True, asyncio.Event(), asyncio.Event()

    def let_go(self) -> None:
        self.released.set()

    async def batch(self, request: web.Request) -> web.Response:
        if self.holding:  # only the next request is held
            self.holding = False
            self.arrived.set()
            await self.released.wait()
        return await super().batch(request)


@pytest.fixture
async def products() -> AsyncIterator[HeldProducts]:
    fake = HeldProducts()
    app = web.Application()
    app.router.add_get("/products/batch", fake.batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def settings(tmp_path: Path, products: HeldProducts) -> OrderSettings:
    (tmp_path / "ports.json").write_text(json.dumps({"product": products.url}))
    return OrderSettings.load("order", data_dir=tmp_path, saga_sweep_seconds=3600)


@asynccontextmanager
async def serving(settings: OrderSettings, products: HeldProducts) -> AsyncIterator[Shop]:
    bus = InMemoryBus()
    await bus.respond(ShippingQuoteRequest.subject, FakeShipping().calculate)
    async with running(create_service(settings, bus=bus), harness=Shop) as shop:
        shop.products = products
        yield shop


@pytest.fixture
async def shop(settings: OrderSettings, products: HeldProducts) -> AsyncIterator[Shop]:
    async with serving(settings, products) as running_shop:
        yield running_shop


@pytest.fixture
async def replica(settings: OrderSettings, products: HeldProducts, shop: Shop) -> AsyncIterator[Shop]:
    """A second instance of the order service on the same database (as `--replicas order=2`)."""
    async with serving(settings, products) as running_shop:
        yield running_shop


async def order_count(shop: Shop) -> int:
    async with shop.service.unit_of_work() as uow:
        return int(await uow.session.scalar(sa.select(sa.func.count()).select_from(orders)) or 0)


async def in_flight(shop: Shop, key: str) -> asyncio.Task[httpx.Response]:
    """A first POST with `key` that has claimed the key and waits at the product service."""
    shop.products.hold()  # type: ignore[attr-defined]
    first = asyncio.create_task(shop.place(key=key))
    await asyncio.wait_for(shop.products.arrived.wait(), 5)  # type: ignore[attr-defined]
    return first


def store_of(shop: Shop) -> IdempotencyStore:
    store: IdempotencyStore = shop.service.app.state.idempotency
    return store


async def test_a_duplicate_while_the_first_is_in_flight_is_409_then_the_first_answer_is_replayed(
    shop: Shop,
) -> None:
    first = await in_flight(shop, "k-race")
    duplicate = await shop.place(key="k-race")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_progress"
    shop.products.let_go()  # type: ignore[attr-defined]
    answer = await first
    assert answer.status_code == 202 and REPLAYED not in answer.headers
    replay = await shop.place(key="k-race")
    assert replay.status_code == 202 and replay.headers[REPLAYED] == "true"
    assert replay.content == answer.content  # byte for byte
    assert await order_count(shop) == 1 and len(shop.products.calls) == 1


async def test_another_body_under_a_key_in_flight_is_422_not_409(shop: Shop) -> None:
    first = await in_flight(shop, "k-race")
    other = await shop.place(order_body(("p-pen", 5)), key="k-race")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    shop.products.let_go()  # type: ignore[attr-defined]
    assert (await first).status_code == 202
    assert await order_count(shop) == 1


async def test_a_burst_of_identical_requests_places_one_order(shop: Shop) -> None:
    answers = await asyncio.gather(*(shop.place(key="k-burst") for _ in range(10)))
    await shop.settle()
    fresh = [a for a in answers if a.status_code == 202 and REPLAYED not in a.headers]
    assert len(fresh) == 1, [a.status_code for a in answers]
    for answer in answers:  # every other one is told to wait or given the same answer
        assert answer.status_code == 409 or answer.content == fresh[0].content, answer.text
    assert await order_count(shop) == 1
    order_id = fresh[0].json()["id"]
    assert len(shop.sent("order.created", order_id)) == 1
    assert len(shop.sent("inventory.reserve", order_id)) == 1


async def test_two_replicas_on_one_database_share_the_keys(shop: Shop, replica: Shop) -> None:
    first = await in_flight(shop, "k-replicas")
    duplicate = await replica.place(key="k-replicas")
    assert duplicate.status_code == 409
    shop.products.let_go()  # type: ignore[attr-defined]
    answer = await first
    replay = await replica.place(key="k-replicas")
    assert replay.headers[REPLAYED] == "true" and replay.content == answer.content
    assert await order_count(replica) == 1


async def test_a_key_stays_24_hours_then_counts_as_new(shop: Shop) -> None:
    first = await shop.place(key="k-day")

    async def age_key(by: timedelta) -> None:
        async with shop.service.unit_of_work() as uow:
            await uow.session.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.key == "k-day")
                .values(created_at=datetime.now(UTC) - by)
            )
            await uow.commit()

    await age_key(timedelta(hours=23, minutes=59))
    assert (await shop.place(key="k-day")).content == first.content
    await age_key(timedelta(hours=24, seconds=1))
    second = await shop.place(key="k-day")
    assert second.status_code == 202 and REPLAYED not in second.headers
    assert second.json()["id"] != first.json()["id"] and await order_count(shop) == 2


async def test_the_purge_forgets_expired_keys_only(shop: Shop) -> None:
    store = store_of(shop)
    await shop.place(key="k-old")
    store.clock = lambda: datetime.now(UTC) + timedelta(hours=24)
    try:
        await shop.place(key="k-new")  # created "24 h from now"
        assert await store.purge_expired() == 1
        assert await store.get("u1", "k-old") is None and await store.get("u1", "k-new") is not None
    finally:
        store.clock = lambda: datetime.now(UTC)


async def test_a_failed_attempt_releases_the_key_for_a_retry(shop: Shop) -> None:
    shop.products.down = True
    failed = await shop.place(key="k-retry")
    assert failed.status_code == 503
    assert await store_of(shop).get("u1", "k-retry") is None
    shop.products.down = False
    retry = await shop.place(key="k-retry")
    assert retry.status_code == 202 and REPLAYED not in retry.headers
    assert await order_count(shop) == 1


async def test_a_request_the_service_refused_keeps_its_answer_for_the_key(shop: Shop) -> None:
    body = order_body(("p-ghost", 1))
    refused = await shop.place(body, key="k-ghost")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_product"
    PRODUCTS["p-ghost"] = {"id": "p-ghost", "name": "Ghost", "price": 1.0, "currency": "USD"}
    try:
        again = await shop.place(body, key="k-ghost")  # a new attempt needs a new key
    finally:
        del PRODUCTS["p-ghost"]
    assert again.status_code == 422 and again.content == refused.content and again.headers[REPLAYED] == "true"
    assert await order_count(shop) == 0


async def test_another_users_key_never_yields_their_answer(shop: Shop) -> None:
    mine = await shop.place(key="k-shared")
    theirs = await shop.place(key="k-shared", user="u2")
    assert theirs.status_code == 202 and REPLAYED not in theirs.headers
    assert theirs.json()["user_id"] == "u2" and theirs.json()["id"] != mine.json()["id"]


async def test_a_claim_held_past_the_lock_timeout_is_taken_over_without_a_second_order(shop: Shop) -> None:
    store = store_of(shop)
    first = await in_flight(shop, "k-stuck")
    store.lock_timeout = timedelta(0)  # the first has now "hung" for longer than allowed
    try:
        takeover = await shop.place(key="k-stuck")
    finally:
        store.lock_timeout = timedelta(seconds=60)
    assert takeover.status_code == 202 and REPLAYED not in takeover.headers
    shop.products.let_go()  # type: ignore[attr-defined]
    late = await first
    assert late.status_code == 409  # its order was rolled back with its claim
    assert late.json()["error"]["code"] == "idempotency_key_in_progress"
    assert await order_count(shop) == 1
    assert (await shop.place(key="k-stuck")).content == takeover.content


@pytest.mark.parametrize("key", ["k" * 201, "two words", "crlf\r\nX-Injected: 1", "ünïcode"])
async def test_a_malformed_key_is_refused_before_anything_runs(shop: Shop, key: str) -> None:
    headers = [*shop.auth_headers("u1").items(), ("Idempotency-Key", key)]
    encoded = [(name.encode(), value.encode("utf-8")) for name, value in headers]
    try:
        response = await shop.client.post("/orders", json=order_body(), headers=encoded)
    except (httpx.LocalProtocolError, ValueError):
        return  # the client will not even send it (CR LF in a header)
    assert response.status_code == 422
    assert await order_count(shop) == 0 and shop.products.calls == []


async def test_a_restarted_instance_frees_the_claims_its_dead_process_held(
    settings: OrderSettings, products: HeldProducts
) -> None:
    body = order_body()
    async with serving(settings, products) as shop:
        # What a process killed mid-request leaves behind: a claim nobody will finish.
        await store_of(shop).begin(
            "u1",
            "k-crash",
            operation="POST /orders",
            fingerprint=fingerprint(PlaceOrderIn.model_validate(body)),
        )
        assert (await shop.place(body, key="k-crash")).status_code == 409
    async with serving(settings, products) as restarted:
        retry = await restarted.place(body, key="k-crash")  # at once, not after the lock timeout
        assert retry.status_code == 202 and REPLAYED not in retry.headers
        assert await order_count(restarted) == 1
