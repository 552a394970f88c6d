"""`msashop serve gateway` with several worker processes on one port (SO_REUSEPORT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
    environment |= {
        "MSASHOP_GATEWAY_PORT": str(port),
        "MSASHOP_GATEWAY_DATA_DIR": str(tmp_path),
        "MSASHOP_GATEWAY_LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-m", "msashop", "serve", "gateway"]
    return subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ready(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the gateway on {port} did not become ready")


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's")
def test_workers_share_the_port_and_stop_with_the_parent(tmp_path: Path) -> None:
    port = _free_port()
    gateway = _start(tmp_path, port, MSASHOP_GATEWAY_WORKERS="3")
    try:
        _ready(port)
        workers = _children(gateway.pid)
        assert len(workers) == 2  # the parent is the third worker
        for _ in range(20):  # new connections each time: any worker may take one
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
                assert answer.status == 200
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=20)
    # The parent waited for its workers before it exited.
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigterm_while_starting_stops_every_worker(tmp_path: Path) -> None:
    gateway = _start(tmp_path, _free_port(), MSASHOP_GATEWAY_WORKERS="3")
    deadline = time.monotonic() + 30
    while len(workers := _children(gateway.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    gateway.send_signal(signal.SIGTERM)  # the parent is still building its app
    gateway.wait(timeout=20)
    assert len(workers) == 2 and [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


def test_without_reuse_port_a_second_gateway_on_the_port_fails(tmp_path: Path) -> None:
    port = _free_port()
    first = _start(tmp_path, port)
    try:
        _ready(port)
        second = _start(tmp_path, port)
        assert second.wait(timeout=30) != 0
        assert second.stderr is not None and b"Address already in use" in second.stderr.read()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)
