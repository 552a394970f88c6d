"""The registry as the supervisor runs it: `python -m msashop serve registry`, its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import consul
import pytest
import requests

from tests.conftest import free_port, wait_for_port


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "MSASHOP_REGISTRY_PORT": str(port),
            "MSASHOP_REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "MSASHOP_REGISTRY_ENV": "test",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "msashop", "serve", "registry"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        wait_for_port(port, timeout=20)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_serve_registry_keeps_its_state_across_a_restart(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = spawn(port)
    client = consul.Consul(host="127.0.0.1", port=port)
    assert client.agent.service.register(
        "order",
        service_id="order-1",
        address="127.0.0.1",
        port=8106,
        tags=["v1"],
        check=consul.Check.ttl("1m"),
    )
    assert client.agent.check.ttl_pass("service:order-1")
    index, _ = client.health.service("order")
    watch = ThreadPoolExecutor(1).submit(client.health.service, "order", index=index, wait="30s")
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    # A watch's open blocking query is answered at once, not waited out (uvicorn would wait 8 s).
    assert watch.result(timeout=3)[0] == index
    assert process.wait(timeout=5) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    assert (tmp_path / "data" / "registry" / "state.json").exists()

    spawn(port)
    client = consul.Consul(host="127.0.0.1", port=port)
    _, entries = client.health.service("order", passing=True)
    assert [(e["Service"]["ID"], e["Service"]["Tags"]) for e in entries] == [("order-1", ["v1"])]
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'registry_instances{service="order",status="passing"} 1.0' in metrics
