"""What tracing and metrics cost a checkout: the whole platform with them on, then off, one run.

    .venv/bin/python bench/observability_cost.py [--users 10] [--orders-per-user 12] [--json out.json]

For each configuration, starts `msashop up` on a temporary data dir and free port (rate limits
off: the status polling would hit them), signs up `--users` customers, and has them all check
out at once, each placing `--orders-per-user` orders one after another (POST /api/orders, then
polling until CONFIRMED). Reports orders/s (confirmed orders over the wall time of the whole
burst) and the POST -> CONFIRMED latency, then stops the platform.

  on    the defaults: every trace kept and exported to the embedded trace store, request metrics
  10%   the same with a tenth of the traces kept (the production default ratio; the rest are
        still recorded, so that a failed span is exported whatever the ratio)
  off   MSASHOP_TRACING=off and MSASHOP_REQUEST_METRICS=off (no spans, no per-request metrics)

Not a test: a measurement. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ADDRESS = {
    "name": "Bench Mark",
    "line1": "1 Load St",
    "city": "Testville",
    "postal_code": "1000",
    "country": "NL",
}
CONFIGS = {
    "on": {},
    "10%": {"MSASHOP_TRACE_SAMPLE_RATIO": "0.1"},
    "off": {"MSASHOP_TRACING": "off", "MSASHOP_REQUEST_METRICS": "off"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_platform(root: Path, port: int, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
    env |= {"MSASHOP_RATE_LIMITS": "off", "MSASHOP_ADMIN_PASSWORD": "Bench-admin-1234", **extra}
    command = [sys.executable, "-m", "msashop", "up", "--port", str(port), "--data-dir", str(root / "data")]
    log = (root / "up.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"msashop up exited; see {root / 'up.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit("the platform did not become healthy within 180 s")


def stop_platform(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with session.request(method, url, **kwargs) as answer:
        body = await answer.json(content_type=None)
        if answer.status >= 400:
            raise SystemExit(f"{method} {url}: {answer.status} {body}")
        return body


async def customer(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    password = "Bench-pass-" + uuid.uuid4().hex[:8]
    await call(
        session, "POST", f"{base}/api/auth/register", json={"email": email, "password": password, "name": "B"}
    )
    pair = await call(session, "POST", f"{base}/api/auth/login", json={"email": email, "password": password})
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def checkouts(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], products: list[str], count: int
) -> list[float]:
    latencies = []
    for n in range(count):
        body = {
            "items": [{"product_id": products[n % len(products)], "quantity": 1}],
            "payment": {"token": "tok_visa"},
            "shipping_address": ADDRESS,
        }
        begun = time.monotonic()
        sent = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        order = await call(session, "POST", f"{base}/api/orders", json=body, headers=sent)
        while True:
            status = (await call(session, "GET", f"{base}/api/orders/{order['id']}", headers=headers))[
                "status"
            ]
            if status != "PENDING":
                break
            await asyncio.sleep(0.1)
        if status == "CONFIRMED":
            latencies.append(time.monotonic() - begun)
    return latencies


async def burst(base: str, users: int, per_user: int) -> dict[str, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        catalog = await call(session, "GET", f"{base}/api/products", params={"page_size": "100"})
        products = [p["id"] for p in catalog["items"]]
        logins = [await customer(session, base) for _ in range(users)]
        begun = time.monotonic()
        runs = await asyncio.gather(*(checkouts(session, base, h, products, per_user) for h in logins))
        wall = time.monotonic() - begun
    latencies = sorted(x for run in runs for x in run)
    return {
        "confirmed": len(latencies),
        "orders_per_second": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--orders-per-user", type=int, default=12)
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated configurations")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for name in args.only.split(","):
        extra = CONFIGS[name]
        root = Path(tempfile.mkdtemp(prefix=f"msashop-bench-obs-{name}-"))
        port = free_port()
        platform = start_platform(root, port, extra)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(burst(base, 2, 2))  # warm-up: connections, caches, JWKS
            results[name] = asyncio.run(burst(base, args.users, args.orders_per_user))
        finally:
            stop_platform(platform)
        r = results[name]
        print(
            f"{name:4} {r['orders_per_second']:6.2f} orders/s  confirmed {r['confirmed']:.0f}"
            f"  POST->CONFIRMED p50 {r['p50_ms']:.0f} ms  p95 {r['p95_ms']:.0f} ms",
            flush=True,
        )
    summary: dict[str, object] = {"results": results}
    if "off" in results:
        for name in results.keys() - {"off"}:
            change = results[name]["orders_per_second"] / results["off"]["orders_per_second"] - 1
            summary[f"throughput_change_{name}_vs_off"] = round(change, 3)
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
