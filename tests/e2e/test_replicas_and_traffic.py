"""Discovery, load balancing and traffic management on a real platform with replicas.

A second platform for this module: `msashop up --replicas product=3` with `product-3` tagged v2
(`[versions]`). Every process registers in the registry `msashop up` starts first; the gateway
and the services find each other through it. Traffic rules go in `<data-dir>/traffic.toml`,
which the gateway reloads without a restart, so each test writes the rules it needs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

CANARY = """
[[services.product.http]]
match = [{ headers = { x-version = { exact = "v2" } } }]
route = [{ destination = { subset = "v2" } }]
[[services.product.http]]
route = [{ destination = { subset = "v1" }, weight = 90 }, { destination = { subset = "v2" }, weight = 10 }]
"""

STRANGLER = """
[[http]]
match = [{ uri = { prefix = "/api/products" }, method = { regex = "GET|HEAD" } }]
route = [
  { destination = { host = "legacy" }, weight = 90 },
  { destination = { host = "product" }, weight = 10 },
]
"""


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = Platform(
        tmp_path_factory.mktemp("replicas"),
        config='[versions]\n"product-3" = "v2"\n',
        args=("--replicas", "product=3"),
    )
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


def use_traffic(platform: Platform, rules: str) -> None:
    """Write the gateway's traffic rules and wait past its reload check (once a second)."""
    (platform.data_dir / "traffic.toml").write_text(rules)
    time.sleep(1.5)


def product_urls(platform: Platform) -> list[str]:
    urls = json.loads(platform.ports_file.read_text())["product"]
    assert isinstance(urls, list) and len(urls) == 3, urls
    return urls


def served(url: str) -> float:
    """How many requests one product instance has answered on its catalog routes (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_requests_total{") and 'route="/products' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def registry_url(platform: Platform) -> str:
    """The registry is in the port map like every component."""
    url: str = json.loads(platform.ports_file.read_text())["registry"]
    return url


def health_of(platform: Platform, instance_id: str) -> str | None:
    """The instance's check status in the registry (Consul's health API), None once deregistered."""
    entries = httpx.get(f"{registry_url(platform)}/v1/health/service/product", timeout=5).json()
    for entry in entries:
        if entry["Service"]["ID"] == instance_id:
            statuses = {c["Status"] for c in entry["Checks"]}
            return (
                "critical" if "critical" in statuses else "passing" if statuses == {"passing"} else "warning"
            )
    return None


def test_every_replica_takes_traffic_and_the_canary_split_holds(replicated: Platform) -> None:
    use_traffic(replicated, CANARY)
    urls = product_urls(replicated)
    before = [served(u) for u in urls]
    with httpx.Client(base_url=replicated.base_url, timeout=10) as client:
        for _ in range(2000):
            assert client.get("/api/products", params={"page_size": 1}).status_code == 200
        pinned_before = served(urls[2])
        for _ in range(50):
            assert client.get("/api/products", headers={"x-version": "v2"}).status_code == 200
    pinned = served(urls[2]) - pinned_before
    assert pinned == 50  # header routing is exact: every x-version v2 request reached product-3
    after = [served(u) for u in urls]
    counts = [a - b for a, b in zip(after, before, strict=True)]
    counts[2] -= 50
    assert all(c > 0 for c in counts), counts  # each replica took traffic
    v2_share = counts[2] / sum(counts)
    assert abs(v2_share - 0.10) <= 0.03, counts  # 90/10 within ±3 points over 2,000 requests
    assert abs(counts[0] - counts[1]) <= 0.1 * (counts[0] + counts[1]), counts  # round robin in v1


def test_strangler_fig_sends_a_share_to_the_new_service_with_the_same_answers(replicated: Platform) -> None:
    use_traffic(replicated, STRANGLER)
    urls = product_urls(replicated)
    before = sum(served(u) for u in urls)
    bodies: Counter[str] = Counter()
    with httpx.Client(base_url=replicated.base_url, timeout=10) as client:
        for _ in range(600):
            response = client.get("/api/products", params={"page_size": 5})
            assert response.status_code == 200, response.text
            bodies[response.text] += 1
    to_new = sum(served(u) for u in urls) - before
    assert 0.05 <= to_new / 600 <= 0.15, to_new  # about 10% reached the new product service
    assert len(bodies) == 1  # legacy and product answer the same for the same data
    legacy = httpx.get(f"{replicated.base_url}/api/legacy/products", params={"pageSize": 3}, timeout=10)
    assert legacy.status_code == 200 and legacy.json()["resultCode"]


def _pid_of(platform: Platform, url: str) -> int:
    port = url.rsplit(":", 1)[1]
    wanted = f"MSASHOP_PRODUCT_PORT={port}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if (
                b"serve" in argv
                and b"product" in argv
                and wanted in (entry / "environ").read_bytes().split(b"\0")
            ):
                return int(entry.name)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    raise AssertionError(f"no product process on port {port}")


def test_a_hung_replica_under_load_costs_no_errors_and_is_deregistered(replicated: Platform) -> None:
    use_traffic(replicated, "")  # plain round robin over the three
    urls = product_urls(replicated)
    pid = _pid_of(replicated, urls[1])
    assert health_of(replicated, "product-2") == "passing"
    errors: list[str] = []
    answered = Counter[int]()
    stop = threading.Event()

    def steady_load() -> None:
        with httpx.Client(base_url=replicated.base_url, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.get("/api/products", params={"page_size": 2})
                    answered[response.status_code] += 1
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text[:120]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                time.sleep(0.02)

    load = threading.Thread(target=steady_load, daemon=True)
    load.start()
    try:
        time.sleep(2)
        os.kill(pid, signal.SIGSTOP)  # hung, as a dead VM would be: connections open, no answers
        deadline = time.monotonic() + 30
        while health_of(replicated, "product-2") != "critical" and time.monotonic() < deadline:
            time.sleep(1)
        assert health_of(replicated, "product-2") == "critical"
        critical_at = time.monotonic()
        while health_of(replicated, "product-2") is not None and time.monotonic() < critical_at + 45:
            time.sleep(1)
        gone_after = time.monotonic() - critical_at
        assert health_of(replicated, "product-2") is None, "not deregistered"
        assert gone_after >= 25, gone_after  # DeregisterCriticalServiceAfter 30 s (checks every 10 s)
    finally:
        os.kill(pid, signal.SIGCONT)
        stop.set()
        load.join(timeout=60)
    assert errors == [], errors[:5]
    assert answered[200] > 100
    # Alive again: it registers itself anew and takes traffic again.
    deadline = time.monotonic() + 40
    while health_of(replicated, "product-2") != "passing" and time.monotonic() < deadline:
        time.sleep(1)
    assert health_of(replicated, "product-2") == "passing"


def test_instances_register_with_version_tags(replicated: Platform) -> None:
    entries: list[dict[str, Any]] = httpx.get(
        f"{registry_url(replicated)}/v1/health/service/product", params={"passing": ""}, timeout=5
    ).json()
    tags = {e["Service"]["ID"]: set(e["Service"]["Tags"]) for e in entries}
    assert tags["product-3"] >= {"v2"} and tags["product"] >= {"v1"} and tags["product-2"] >= {"v1"}
    services = httpx.get(f"{registry_url(replicated)}/v1/catalog/services", timeout=5).json()
    assert {"gateway", "user", "order", "legacy", "product"} <= set(services)
