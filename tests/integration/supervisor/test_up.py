"""`msashop up` as a real process tree: infrastructure, a service, restarts, shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from msashop.supervisor.launch import START_ORDER
from tests.integration.supervisor.platform_process import (
    RunningPlatform,
    alive,
    descendants,
    http_status,
    start_platform,
)

STARTUP = 90.0  # generous: CI machines run the other suites in parallel

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(tmp_path_factory.mktemp("up"), only="product")
    try:
        running.wait_for_output("msashop is up", within=STARTUP)
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def test_product_is_ready_behind_the_port_map(platform: RunningPlatform) -> None:
    urls = platform.port_map()
    assert list(urls) == ["product"]
    assert urls["product"].startswith("http://127.0.0.1:")
    assert http_status(f"{urls['product']}/ready") == 200
    assert "✓ product" in platform.output
    for sub in ("db", "logs", "nats", "valkey"):
        assert (platform.data_dir / sub).is_dir()
    assert (platform.data_dir / "db" / "product.sqlite").exists()


def test_child_output_is_prefixed_on_console_and_raw_in_the_log_file(platform: RunningPlatform) -> None:
    assert any(line.startswith("product │ service.started port=") for line in platform.output.splitlines())
    log = (platform.data_dir / "logs" / "product.log").read_text()
    assert '"event": "service.started"' in log
    assert (platform.data_dir / "logs" / "nats.log").read_text()


def test_status_lists_each_service_and_exits_zero_when_all_are_ready(platform: RunningPlatform) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "msashop", "status", "--data-dir", str(platform.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "product" in result.stdout and "up" in result.stdout


def test_a_second_supervisor_on_the_same_data_dir_is_refused(platform: RunningPlatform) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "msashop", "up", "--data-dir", str(platform.data_dir),
         "--port", str(platform.port + 1), "--only", "product"],
        capture_output=True, text=True, timeout=60, cwd=platform.cwd,
    )  # fmt: skip
    assert result.returncode == 1
    assert "already using" in result.stdout
    assert platform.port_map()  # the running platform's map is untouched


def test_a_killed_service_is_restarted_and_healthy_again(platform: RunningPlatform) -> None:
    before = platform.service_pid("product")
    os.kill(before, signal.SIGKILL)
    platform.wait_for_output("product exited with -9, restarting in 1 s", within=10)
    platform.wait_for_output("back after a restart", within=STARTUP)
    after = platform.service_pid("product")
    assert after != before
    assert http_status(f"{platform.port_map()['product']}/ready") == 200


def test_the_whole_platform_comes_up_and_sigterm_stops_it_in_order(tmp_path: Path) -> None:
    running = start_platform(tmp_path, only=None, extra_env={"MSASHOP_ADMIN_PASSWORD": "Whole-platform-1"})
    running.wait_for_output("msashop is up", within=STARTUP)
    assert list(running.port_map()) == list(START_ORDER)
    assert running.port_map()["gateway"] == f"http://127.0.0.1:{running.port}"
    assert http_status(f"http://127.0.0.1:{running.port}/health") == 200
    assert "admin@msashop.local  /  Whole-platform-1" in running.output
    children = descendants(running.process.pid)
    assert len(children) == len(START_ORDER) + 2  # and nats, valkey
    code, seconds = running.stop(signal.SIGTERM)
    assert code == 0, running.output
    assert seconds < 20
    time.sleep(0.5)  # let init reap the orphans' zombies, if any
    assert [pid for pid in children if alive(pid)] == []
    assert not (running.data_dir / "ports.json").exists()
    # Gateway first, services in reverse start order, the token store, the broker last.
    stops = [line.split()[1] for line in running.output.splitlines() if line.strip().startswith("■")]
    assert stops == [*reversed(START_ORDER), "valkey", "nats"]
    assert "killing it" not in running.output  # each stopped on SIGTERM, none needed SIGKILL


def test_children_die_with_a_supervisor_killed_hard(tmp_path: Path) -> None:
    running = start_platform(tmp_path, only="product")
    running.wait_for_output("msashop is up", within=STARTUP)
    children = descendants(running.process.pid)
    running.process.kill()
    running.process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if alive(pid)] == []


def test_gateway_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "msashop", "up", "--data-dir", str(tmp_path / "data"),
             "--port", str(port), "--only", "product,gateway"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stdout
    assert "--port" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_config_file_is_reported_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[bus]\nbackend = "pulsar"\n')
    result = subprocess.run(
        [sys.executable, "-m", "msashop", "up", "--data-dir", str(tmp_path / "data"),
         "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "[bus] backend 'pulsar' is unknown" in result.stderr
    assert not (tmp_path / "data").exists()


def login_status(user_url: str, password: str) -> int:
    body = json.dumps({"email": "admin@msashop.local", "password": password}).encode()
    request = urllib.request.Request(
        f"{user_url}/auth/login", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_first_run_generates_the_admin_password_once(tmp_path: Path) -> None:
    first = start_platform(tmp_path, only="user")
    first.wait_for_output("msashop is up", within=STARTUP)
    match = re.search(r"admin@msashop\.local\s+/\s+(\S+)", first.output)
    assert match, first.output
    password = match.group(1)
    assert login_status(first.port_map()["user"], password) == 200
    assert (first.data_dir / "admin-created").exists()
    assert first.stop()[0] == 0

    again = start_platform(tmp_path, only="user")
    again.wait_for_output("msashop is up", within=STARTUP)
    assert "admin@msashop.local  /  (unchanged)" in again.output
    assert password not in again.output
    assert login_status(again.port_map()["user"], password) == 200
    assert again.stop()[0] == 0
