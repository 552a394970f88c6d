"""The platform survives a crashed service and a full restart without losing orders or data.

This module runs last (file order): the restart test leaves the shared platform running again,
on a new gateway port, so a test after it would still work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, Platform, ShopClient, User

pytestmark = pytest.mark.e2e

# ../shared beside the repo, as in CI.
CONTRACT_SMOKE = Path(__file__).resolve().parents[3] / "shared" / "tools" / "contract_smoke.py"
# The shared script's check() adds its `ok` argument to an int, and one check passes the JWKS key
# list as `ok`, which raises TypeError whenever the JWKS is right. Run it with `ok` made a bool;
# every check and the exit status are otherwise the script's own.
RUN_SMOKE = """
import runpy, sys
sys.argv = sys.argv[1:]
smoke = runpy.run_path(sys.argv[0], run_name="contract_smoke")
check = smoke["check"]
smoke["main"].__globals__["check"] = lambda name, ok, detail="": check(name, bool(ok), detail)
sys.exit(smoke["main"]())
"""


def service_pids(platform: Platform, name: str) -> list[int]:
    """Pids of `msashop serve <name>` processes of this platform (matched by the port it was given)."""
    port = urlparse(json.loads(platform.ports_file.read_text())[name]).port
    wanted = f"MSASHOP_{name.upper()}_PORT={port}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"serve" not in argv or name.encode() not in argv or b"msashop" not in argv:
                continue
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return pids


def place_until_accepted(
    shop: ShopClient, user: User, items: list[tuple[str, int]], within: float = 60
) -> str:
    """Retry with the same Idempotency-Key while the order service is down, as a client should."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = shop.place_order(user.token, items, key=key)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if response.status_code == 202:
                order_id: str = response.json()["id"]
                return order_id
            last = f"{response.status_code} {response.text[:200]}"
            # 409: our first try is still in flight (Idempotency-Key); try again, as Stripe says.
            assert response.status_code in (409, 502, 503, 504), last
        time.sleep(0.5)
    raise AssertionError(f"order not accepted within {within} s; last answer: {last}")


def test_contract_smoke_passes(shop: ShopClient) -> None:
    if not CONTRACT_SMOKE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CONTRACT_SMOKE} is missing")
        pytest.skip(f"{CONTRACT_SMOKE} is not on this machine")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_SMOKE,
            str(CONTRACT_SMOKE),
            shop.base_url,
            "--admin-password",
            ADMIN_PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def wait_for_restart(platform: Platform, name: str, victim: int, within: float = 60) -> None:
    """A new process for `name`, and the platform healthy again."""
    deadline = time.monotonic() + within
    while not (pids := service_pids(platform, name)) or victim in pids:
        assert time.monotonic() < deadline, f"the supervisor did not restart {name}"
        time.sleep(0.3)
    while True:
        try:
            if httpx.get(f"{platform.base_url}/health", timeout=3).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the platform is not healthy again after {name} restarted"
        time.sleep(0.3)


@pytest.mark.parametrize("name", ["user", "product", "inventory", "payment", "notification", "gateway"])
def test_any_killed_service_comes_back_and_checkouts_succeed(
    shop: ShopClient, platform: Platform, name: str
) -> None:
    buyer = shop.register_and_login(f"Kill {name}")
    [product] = shop.products_in_stock(1)
    in_flight = place_until_accepted(shop, buyer, [(product["id"], 1)])
    [victim] = service_pids(platform, name)
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    wait_for_restart(platform, name, victim)

    # Accepted before the crash: still ends terminal. A new checkout works within 60 s.
    assert shop.wait_for_status(in_flight, buyer.token, within=60)["status"] in ("CONFIRMED", "CANCELLED")
    deadline = started + 60
    while True:
        try:
            latest = shop.checkout(buyer.token, [(product["id"], 1)])
            break
        except (httpx.HTTPError, AssertionError):
            assert time.monotonic() < deadline, f"no successful checkout within 60 s of killing {name}"
            time.sleep(1)
    assert latest["status"] == "CONFIRMED"


def test_killed_order_service_is_restarted_and_no_order_is_lost(shop: ShopClient, platform: Platform) -> None:
    buyer = shop.register_and_login("Crash Buyer")
    products = shop.products_in_stock(2)
    [victim] = service_pids(platform, "order")

    order_ids = []
    for n in range(10):
        if n == 5:
            os.kill(victim, signal.SIGKILL)
        order_ids.append(place_until_accepted(shop, buyer, [(products[n % 2]["id"], 1)]))

    deadline = time.monotonic() + 30
    while not (pids := service_pids(platform, "order")) or victim in pids:
        assert time.monotonic() < deadline, "the supervisor did not restart the order service"
        time.sleep(0.5)
    finals = [shop.wait_for_status(oid, buyer.token, within=60) for oid in order_ids]
    assert all(f["status"] in ("CONFIRMED", "CANCELLED") for f in finals)
    assert len(set(order_ids)) == 10
    assert shop.checkout(buyer.token, [(products[0]["id"], 1)])["status"] == "CONFIRMED"


def test_restart_keeps_users_orders_and_catalog(shop: ShopClient, platform: Platform) -> None:
    buyer = shop.register_and_login("Returning Buyer")
    [product] = shop.products_in_stock(1)
    order = shop.checkout(buyer.token, [(product["id"], 1)])
    catalog = sorted(shop.products(), key=lambda p: p["id"])
    stock = shop.inventory(product["id"])

    code = platform.stop()
    assert code == 0, f"msashop up exited with {code} after SIGTERM\n{platform.tail()}"
    platform.start()

    tokens = shop.login(buyer.email, buyer.password)
    me = shop.get("/api/users/me", token=tokens["access_token"]).json()
    assert (me["id"], me["email"]) == (buyer.id, buyer.email)
    again = shop.get(f"/api/orders/{order['id']}", token=tokens["access_token"])
    assert again.status_code == 200, again.text
    for field in ("id", "status", "status_reason", "items", "total", "currency", "created_at"):
        assert again.json()[field] == order[field], field
    assert sorted(shop.products(), key=lambda p: p["id"]) == catalog
    assert shop.inventory(product["id"]) == stock
