"""The broker stopped for 20 s in the middle of 200 checkouts: every order still ends, stock and
payments add up, and no effect happens twice (issue 4, "Done means").

The embedded nats-server of a platform of its own is frozen with SIGSTOP: clients keep their TCP
connections but get no answers, exactly like a dead broker, and the supervisor does not restart
it (the process has not exited). Sagas in flight stall (their events wait in the outboxes) and
SIGCONT brings the broker back. Meanwhile the order service's /ready must say so: 503 within
5 s of the freeze, 200 again on its own within 30 s of the thaw, the same process throughout
(readiness failing is no reason for the supervisor to restart anything). Placing an order needs
a shipping quote, an RPC over the bus, so while the broker is down it answers 503
shipping_unavailable; the client retries with the same Idempotency-Key, as CONTRACT.md asks, and
must never get two orders for one key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TERMINAL, Platform, ShopClient, User
from tests.e2e.test_resilience import service_pids

pytestmark = [pytest.mark.e2e, pytest.mark.bus_nats]

ORDERS = 200
USERS = 10
PRODUCTS = 4
IN_FLIGHT = 20
PACE = 0.15  # s between order launches: ~30 s of placing, so orders go in before, during and after
OUTAGE_AFTER = 50  # accepted orders
OUTAGE_SECONDS = 20
SETTLE_SECONDS = 180  # after the last order is placed
DECLINE_EVERY = 10  # every 10th order pays with a declined card, so some end CANCELLED
PLACE_WITHIN = 60  # s of retrying one order (503 while the broker is down)
READY_DOWN_WITHIN = 5.0  # s from the freeze to the order service's /ready answering 503
READY_BACK_WITHIN = 30.0  # s from the thaw to its /ready answering 200 again


@dataclass
class Placed:
    user: User
    product_id: str
    quantity: int
    payment_token: str
    order_id: str = ""
    accepted_at: float = 0.0
    refused: int = 0  # 503 answers before it was accepted
    final: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outage:
    started: float = 0.0
    ended: float = 0.0


@pytest.fixture(scope="module")
def own_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopClient]:
    """A platform of its own on the default (NATS) bus: the shared one is never frozen."""
    platform = Platform(tmp_path_factory.mktemp("broker-outage"))
    platform.start()
    yield ShopClient(platform)
    code = platform.stop()
    assert code == 0, f"msashop up exited with {code} after SIGTERM\n{platform.tail()}"


def nats_server_pid(platform: Platform) -> int:
    """The pid of this platform's nats-server (its store dir is under this platform's data dir)."""
    store = str((platform.data_dir / "nats").resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if argv and argv[0].endswith(b"nats-server") and store in argv:
            found.append(int(entry.name))
    assert len(found) == 1, f"expected one nats-server for {store!r}, found {found}"
    return found[0]


@dataclass
class ReadyWatch:
    """The order service's /ready, asked every 0.25 s: (time the answer came, status; 0: none)."""

    url: str
    answers: list[tuple[float, int]] = field(default_factory=list)
    thawed_at: float | None = None  # set once the broker is back: then `back` waits for a 200
    back: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while not stop.is_set():
                try:
                    status = (await client.get(f"{self.url}/ready")).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((time.monotonic(), status))
                if status == 200 and self.thawed_at is not None:
                    self.back.set()
                await asyncio.sleep(0.25)

    def first(self, status: int, after: float) -> float | None:
        """Seconds from `after` to the first answer with `status` that came after it."""
        return next((at - after for at, got in self.answers if at > after and got == status), None)


async def place(client: httpx.AsyncClient, shop: ShopClient, order: Placed) -> None:
    """POST until accepted, retrying a 503 with the same Idempotency-Key."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + PLACE_WITHIN
    while True:
        response = await client.post(
            "/api/orders",
            json=shop.order_body([(order.product_id, order.quantity)], order.payment_token),
            headers={**order.user.headers, "Idempotency-Key": key},
        )
        if response.status_code == 202:
            order.order_id = response.json()["id"]
            order.accepted_at = time.monotonic()
            return
        assert response.status_code == 503, f"{response.status_code} {response.text}"
        assert response.json()["error"]["code"], response.text
        order.refused += 1
        assert time.monotonic() < deadline, f"not accepted within {PLACE_WITHIN} s: {response.text}"
        await asyncio.sleep(0.5)


async def freeze_broker(pid: int, accepted: asyncio.Event, outage: Outage) -> None:
    await accepted.wait()
    os.kill(pid, signal.SIGSTOP)
    outage.started = time.monotonic()
    try:
        await asyncio.sleep(OUTAGE_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)
        outage.ended = time.monotonic()


async def place_all(shop: ShopClient, client: httpx.AsyncClient, plan: list[Placed], pid: int) -> Outage:
    """Launch an order every PACE s, at most IN_FLIGHT at once; freeze the broker after
    OUTAGE_AFTER are accepted."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    enough = asyncio.Event()
    outage = Outage()
    freezer = asyncio.create_task(freeze_broker(pid, enough, outage))

    async def one(order: Placed) -> None:
        try:
            await place(client, shop, order)
        finally:
            slots.release()
        if sum(1 for o in plan if o.order_id) >= OUTAGE_AFTER:
            enough.set()

    try:
        tasks = []
        for order in plan:
            await slots.acquire()
            tasks.append(asyncio.create_task(one(order)))
            await asyncio.sleep(PACE)
        await asyncio.gather(*tasks)
        await freezer  # the broker is back before anything is checked
    finally:
        if not freezer.done():
            freezer.cancel()  # its finally sends SIGCONT
            await asyncio.gather(freezer, return_exceptions=True)
    return outage


async def wait_terminal(client: httpx.AsyncClient, order: Placed, deadline: float) -> None:
    last: object = None
    while time.monotonic() < deadline:
        response = await client.get(f"/api/orders/{order.order_id}", headers=order.user.headers)
        if response.status_code == 200:
            last = response.json()
            if last["status"] in TERMINAL:  # type: ignore[index]
                order.final = last  # type: ignore[assignment]
                return
        else:
            last = f"{response.status_code} {response.text[:200]}"
        await asyncio.sleep(1.0)
    raise AssertionError(
        f"order {order.order_id} not terminal {SETTLE_SECONDS} s after placing; last: {last}"
    )


async def notifications_settled(
    client: httpx.AsyncClient, users: list[User], confirmed: set[str], within: float = 30
) -> Counter[tuple[str, str]]:
    """(order id or user id, type) -> count, once every confirmed order has its order_confirmed note."""
    deadline = time.monotonic() + within
    while True:
        counts: Counter[tuple[str, str]] = Counter()
        for user in users:
            response = await client.get("/api/notifications", headers=user.headers)
            assert response.status_code == 200, response.text
            # Notes about no order (welcome) are counted per user.
            counts.update((n["order_id"] or user.id, n["type"]) for n in response.json())
        missing = [oid for oid in confirmed if counts[(oid, "order_confirmed")] == 0]
        if not missing or time.monotonic() > deadline:
            assert not missing, f"{len(missing)} confirmed orders without an order_confirmed note"
            return counts
        await asyncio.sleep(0.5)


async def test_a_20_s_broker_outage_during_200_checkouts_leaves_everything_consistent(
    own_shop: ShopClient,
) -> None:
    shop = own_shop
    began = time.monotonic()
    users = [shop.register_and_login(f"Outage {n}") for n in range(USERS)]
    products = shop.products_in_stock(PRODUCTS, at_least=100)  # 200 orders of 1-2 units: no shortage
    start = {p["id"]: p["stock"] for p in products}
    plan = [
        Placed(
            user=users[n % USERS],
            product_id=products[n % PRODUCTS]["id"],
            quantity=1 + n % 2,
            payment_token="tok_decline" if n % DECLINE_EVERY == DECLINE_EVERY - 1 else "tok_visa",
        )
        for n in range(ORDERS)
    ]
    pid = nats_server_pid(shop.platform)
    order_pids = service_pids(shop.platform, "order")
    ready = ReadyWatch(json.loads(shop.platform.ports_file.read_text())["order"])
    watching = asyncio.Event()
    watcher = asyncio.create_task(ready.run(watching))

    limits = httpx.Limits(max_connections=IN_FLIGHT * 2, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=30, limits=limits) as client:
        try:
            outage = await place_all(shop, client, plan, pid)
            ready.thawed_at = outage.ended
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.back.wait(), READY_BACK_WITHIN + 5)
        finally:
            watching.set()
            await watcher
        # Readiness follows the broker, on its own, without a restart.
        went_down = ready.first(503, outage.started)
        assert went_down is not None and went_down <= READY_DOWN_WITHIN, (went_down, ready.answers[-5:])
        came_back = ready.first(200, outage.ended)
        assert came_back is not None and came_back <= READY_BACK_WITHIN, came_back
        assert service_pids(shop.platform, "order") == order_pids, "the order service was restarted"
        in_flight = [o for o in plan if o.accepted_at < outage.started]
        assert len(in_flight) >= OUTAGE_AFTER, "the broker was frozen before enough orders were in flight"

        deadline = time.monotonic() + SETTLE_SECONDS
        polls = asyncio.Semaphore(IN_FLIGHT)

        async def settle(order: Placed) -> None:
            async with polls:
                await wait_terminal(client, order, deadline)

        await asyncio.gather(*(settle(o) for o in plan))

        # Every order ends as its card says: nothing lost, nothing timed out.
        outcomes = Counter((o.payment_token, o.final["status"], o.final.get("status_reason")) for o in plan)
        assert outcomes == {
            ("tok_visa", "CONFIRMED", None): ORDERS - ORDERS // DECLINE_EVERY,
            ("tok_decline", "CANCELLED", "payment_declined"): ORDERS // DECLINE_EVERY,
        }, outcomes

        # One payment per order: captured once when confirmed, never captured when cancelled.
        for order in plan:
            response = await client.get(
                "/api/payments", params={"order_id": order.order_id}, headers=order.user.headers
            )
            assert response.status_code == 200, response.text
            statuses = [p["status"] for p in response.json()]
            expected = ["CAPTURED"] if order.final["status"] == "CONFIRMED" else ["DECLINED"]
            assert statuses == expected, (order.order_id, order.final["status"], statuses)

        confirmed = {o.order_id for o in plan if o.final["status"] == "CONFIRMED"}
        notes = await notifications_settled(client, users, confirmed)
        twice = {key: n for key, n in notes.items() if n > 1}
        assert not twice, f"notifications sent more than once: {twice}"
        assert not [oid for oid, kind in notes if kind == "order_confirmed" and oid not in confirmed]

        # Retried placements made no second order: each buyer has exactly the orders planned.
        for user in users:
            response = await client.get("/api/orders", params={"page_size": 100}, headers=user.headers)
            assert response.status_code == 200, response.text
            mine = sorted(o["id"] for o in response.json()["items"])
            assert mine == sorted(o.order_id for o in plan if o.user is user), user.email

    # Stock: exactly the confirmed quantities are gone, nothing stays reserved.
    sold: Counter[str] = Counter()
    for order in plan:
        if order.final["status"] == "CONFIRMED":
            sold[order.product_id] += order.quantity
    for product_id, before in start.items():
        want = (before["available"] - sold[product_id], before["reserved"])
        stock = shop.wait_for_stock(product_id, *want, within=30)
        assert (stock["available"], stock["reserved"]) == want, (product_id, stock, before)
    refused = sum(o.refused for o in plan)
    print(
        f"broker outage: {time.monotonic() - began:.0f} s, {len(in_flight)} orders accepted before it, "
        f"{refused} placements answered 503 during it; order /ready 503 {went_down:.1f} s after the "
        f"freeze, 200 {came_back:.1f} s after the thaw"
    )
