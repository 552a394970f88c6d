"""Checkout latency: POST /api/orders -> CONFIRMED, one order at a time, through the gateway.

    .venv/bin/python bench/checkout_latency.py [BASE_URL] [-n 100]

Needs a running platform (`make run`), ideally started with MSASHOP_RATE_LIMITS=off: the
status polling (every 20 ms) would otherwise hit the per-user rate limit. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp

POLL_INTERVAL = 0.02
ORDER_TIMEOUT = 30.0
ADDRESS = {
    "name": "Bench Mark",
    "line1": "1 Load St",
    "city": "Testville",
    "postal_code": "1000",
    "country": "NL",
}


class BenchError(Exception):
    pass


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with session.request(method, url, **kwargs) as response:
        if response.status == 429:
            raise BenchError("rate limited: start the platform with MSASHOP_RATE_LIMITS=off")
        if response.status >= 400:
            raise BenchError(f"{method} {url} -> {response.status}: {await response.text()}")
        return await response.json() if response.status != 204 else None


async def sign_up(session: aiohttp.ClientSession, base: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    password = uuid.uuid4().hex
    await call(
        session,
        "POST",
        f"{base}/api/auth/register",
        json={"email": email, "password": password, "name": "Bench"},
    )
    tokens = await call(
        session, "POST", f"{base}/api/auth/login", json={"email": email, "password": password}
    )
    return str(tokens["access_token"])


async def place_and_wait(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], product_id: str
) -> tuple[float, str]:
    body = {
        "items": [{"product_id": product_id, "quantity": 1}],
        "payment": {"token": "tok_visa"},
        "shipping_address": ADDRESS,
    }
    started = time.perf_counter()
    order = await call(
        session,
        "POST",
        f"{base}/api/orders",
        json=body,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    while time.perf_counter() - started < ORDER_TIMEOUT:
        current = await call(session, "GET", f"{base}/api/orders/{order['id']}", headers=headers)
        if current["status"] != "PENDING":
            return (
                time.perf_counter() - started,
                f"{current['status']} {current.get('status_reason') or ''}".strip(),
            )
        await asyncio.sleep(POLL_INTERVAL)
    return time.perf_counter() - started, "PENDING (timed out)"


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def main(base: str, count: int) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        token = await sign_up(session, base)
        headers = {"Authorization": f"Bearer {token}"}
        catalog = await call(session, "GET", f"{base}/api/products", params={"page_size": "100"})
        products = [p["id"] for p in catalog["items"]]
        if not products:
            raise BenchError("the catalog is empty")
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        for n in range(count):
            seconds, outcome = await place_and_wait(session, base, headers, products[n % len(products)])
            outcomes[outcome] += 1
            if outcome == "CONFIRMED":
                latencies.append(seconds)
    print(f"orders: {count}  outcomes: {dict(outcomes)}")
    if not latencies:
        print("no order was confirmed")
        return 1
    values = sorted(latencies)
    ms = {
        name: 1000 * v
        for name, v in (
            ("p50", percentile(values, 50)),
            ("p95", percentile(values, 95)),
            ("p99", percentile(values, 99)),
            ("max", values[-1]),
        )
    }
    print(
        "POST -> CONFIRMED latency (ms): "
        + "  ".join(f"{k} {v:.0f}" for k, v in ms.items())
        + f"  mean {1000 * statistics.fmean(values):.0f}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("-n", "--orders", type=int, default=100)
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.base_url.rstrip("/"), args.orders)))
    except (BenchError, aiohttp.ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
