"""The gateway's rate limits hold across its processes: `msashop serve gateway` with two workers
sharing the port, counting in one Valkey store, answers exactly the limit in total, then 429.

Every request comes on a new connection, so the kernel spreads them over both workers; that both
forwarded some is read from /proc (each holds its own keep-alive connections to the upstream).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT, /proc")

LIMIT = 30
REQUESTS = 48


class _Product(BaseHTTPRequestHandler):
    """The product service: 200 to anything, keep-alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def product_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Product)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def gateway(data_dir: Path, port: int, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
    environment |= {
        "MSASHOP_GATEWAY_PORT": str(port),
        "MSASHOP_GATEWAY_DATA_DIR": str(data_dir),
        "MSASHOP_GATEWAY_WORKERS": "2",
        "MSASHOP_GATEWAY_LOG_LEVEL": "WARNING",
        "MSASHOP_GATEWAY_TRACING": "false",
        **env,
    }
    command = [sys.executable, "-m", "msashop", "serve", "gateway"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _ready(port, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def _ready(port: int, process: subprocess.Popen[bytes], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the gateway exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the gateway on {port} did not become ready")


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection (urllib never reuses one)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def burst(port: int, path: str, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: get(port, path), range(n)))


def processes_connected_to(upstream_port: int, pids: list[int]) -> set[int]:
    """Which of `pids` hold an open TCP connection to 127.0.0.1:`upstream_port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if int(remote.split(":")[1], 16) == upstream_port and state == "01":  # ESTABLISHED
            inodes.add(inode)
    holders = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                holders.add(pid)
    return holders


def _workers(process: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [process.pid, *map(int, children)]


def test_gateway_processes_share_one_limit_then_answer_429(tmp_path: Path, valkey_url: str) -> None:
    """Gateway A runs two workers on one port, gateway B is a third process on another port; the
    requests alternate between the ports, so at least two processes surely count (which of A's
    workers accepts a connection is the kernel's choice), and the limit holds in total."""
    with product_service() as upstream_port:
        (tmp_path / "ports.json").write_text(json.dumps({"product": f"http://127.0.0.1:{upstream_port}"}))
        port_a, port_b = free_port(), free_port()
        limits = {
            "MSASHOP_GATEWAY_STORE_URL": valkey_url,
            "MSASHOP_GATEWAY_RATE_LIMIT_ANONYMOUS": f"{LIMIT}/hour",
        }
        with (
            gateway(tmp_path, port_a, **limits) as process_a,
            gateway(tmp_path, port_b, MSASHOP_GATEWAY_WORKERS="1", **limits) as process_b,
        ):
            workers_a = _workers(process_a)
            assert len(workers_a) == 2
            with ThreadPoolExecutor(max_workers=8) as pool:
                ports = [port_a, port_b] * (REQUESTS // 2)
                answers = list(pool.map(lambda port: get(port, "/api/products"), ports))
            statuses = [status for status, _, _ in answers]
            assert statuses.count(200) == LIMIT, statuses
            assert statuses.count(429) == REQUESTS - LIMIT, statuses
            forwarded = processes_connected_to(upstream_port, [*workers_a, process_b.pid])
            assert process_b.pid in forwarded and forwarded & set(workers_a), forwarded
            port = port_a

            for status, headers, body in answers:
                assert headers["x-ratelimit-limit"] == str(LIMIT)
                assert int(headers["x-ratelimit-reset"]) > time.time()
                if status == 429:
                    assert headers["x-ratelimit-remaining"] == "0"
                    assert int(headers["retry-after"]) >= 1
                    assert json.loads(body)["error"]["code"] == "rate_limited"
            # Each answer's count is read after its own hit (others may land in between).
            remaining = [int(h["x-ratelimit-remaining"]) for s, h, _ in answers if s == 200]
            assert min(remaining) == 0 and max(remaining) < LIMIT

            # /health and /metrics are never limited, whichever worker answers.
            for path in ["/health", "/metrics"] * 4:
                status, headers, _ = get(port, path)
                assert status != 429 and "x-ratelimit-limit" not in headers, path


def test_msashop_rate_limits_off_turns_them_off(tmp_path: Path, valkey_url: str) -> None:
    with product_service() as upstream_port:
        (tmp_path / "ports.json").write_text(json.dumps({"product": f"http://127.0.0.1:{upstream_port}"}))
        port = free_port()
        env = {
            "MSASHOP_GATEWAY_STORE_URL": valkey_url,
            "MSASHOP_GATEWAY_RATE_LIMIT_ANONYMOUS": "3/hour",
            "MSASHOP_RATE_LIMITS": "off",
            "MSASHOP_GATEWAY_WORKERS": "1",  # a setting of each process: one shows it (and starts faster)
        }
        with gateway(tmp_path, port, **env):
            answers = burst(port, "/api/products", 12)
    assert [status for status, _, _ in answers] == [200] * 12
    assert not any("x-ratelimit-limit" in headers for _, headers, _ in answers)
