"""`msashop up --replicas`: every instance of a service runs on its own port and is ready."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.integration.supervisor.platform_process import RunningPlatform, http_status, start_platform

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(
        tmp_path_factory.mktemp("replicas"), only="product", args=("--replicas", "product=3")
    )
    try:
        running.wait_for_output("msashop is up", within=120)
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def test_three_product_instances_each_on_its_own_port_and_ready(platform: RunningPlatform) -> None:
    urls = json.loads((platform.data_dir / "ports.json").read_text())["product"]
    assert isinstance(urls, list) and len(set(urls)) == 3
    assert all(http_status(f"{url}/ready") == 200 for url in urls)
    for name in ("product", "product-2", "product-3"):
        assert f"✓ {name}" in platform.output
        assert (platform.data_dir / "logs" / f"{name}.log").exists()


def test_status_lists_every_instance(platform: RunningPlatform) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "msashop", "status", "--data-dir", str(platform.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(name in result.stdout for name in ("product-2", "product-3"))


def test_replicas_of_the_gateway_or_unknown_services_are_refused(tmp_path: object) -> None:
    for bad in ("gateway=2", "nope=2", "product=0", "product"):
        result = subprocess.run(
            [sys.executable, "-m", "msashop", "up", "--replicas", bad, "--data-dir", "/nonexistent/x"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (bad, result.stdout, result.stderr)
