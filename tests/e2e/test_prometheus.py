"""Debian's Prometheus with deploy/prometheus/prometheus.yml against the platform `msashop up`
runs: it finds every instance through the targets file the supervisor writes, scrapes them all
(`up` = 1), sees orders being placed (`rate(orders_created_total[1m])` > 0) and evaluates the
recording rules on them. Scraping every second keeps the test short."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from msashop.supervisor.ports import read_instances
from tests.conftest import free_port, unavailable
from tests.e2e.conftest import Platform, ShopClient, User

pytestmark = pytest.mark.e2e
yaml = pytest.importorskip("yaml")

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        return active

    def wait_for(self, what: str, check: Callable[[], Any], within: float = 15.0) -> Any:
        deadline = time.monotonic() + within
        while not (found := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: {what} not seen within {within} s")
            time.sleep(0.25)
        return found


def _config(platform: Platform, root: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    [job] = config["scrape_configs"]
    job["file_sd_configs"][0]["files"] = [str(platform.data_dir / "prometheus" / "targets.json")]
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(platform: Platform, tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (apt-get install prometheus, or make prometheus)")
        raise AssertionError("unreachable")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={_config(platform, tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        server.wait_for("readiness", lambda: _ready(server.url, process, tmp_path))
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str, process: subprocess.Popen[bytes], root: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(
            f"prometheus exited with {process.returncode}:\n{(root / 'prometheus.log').read_text()}"
        )
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_prometheus_scrapes_every_instance_and_sees_orders_placed(
    platform: Platform, prometheus: Prometheus, shop: ShopClient, buyer: User
) -> None:
    instances = read_instances(platform.ports_file)
    [product] = shop.products_in_stock(1)

    def all_up() -> bool:
        targets = prometheus.targets()
        scraped = {t["labels"]["instance"]: t["health"] for t in targets}
        return scraped == dict.fromkeys(instances, "up")

    prometheus.wait_for("every instance of the port map as a target, scraped", all_up)
    up = {r["metric"]["instance"]: r["value"][1] for r in prometheus.query('up{job="msashop"}')}
    assert up == dict.fromkeys(instances, "1")
    assert {r["metric"]["service"] for r in prometheus.query('up{job="msashop"}')} == set(
        json.loads(platform.ports_file.read_text())
    )

    # One order first, so the counter's series exists before the next ones move it.
    assert shop.checkout(buyer.token, [(product["id"], 1)])["status"] == "CONFIRMED"
    prometheus.wait_for("orders_created_total", lambda: prometheus.query("orders_created_total"))
    for _ in range(2):
        assert shop.checkout(buyer.token, [(product["id"], 1)])["status"] == "CONFIRMED"

    [rate] = prometheus.wait_for(
        "rate(orders_created_total[1m]) > 0", lambda: prometheus.query("rate(orders_created_total[1m]) > 0")
    )
    assert rate["metric"]["status"] == "PENDING" and rate["metric"]["payment_method"] == "card"
    prometheus.wait_for(
        "the recording rules on the orders", lambda: prometheus.query("msashop:orders_created:rate5m > 0")
    )
    requests = prometheus.query('service:http_requests:rate5m{service="gateway"}')
    assert requests and float(requests[0]["value"][1]) > 0
