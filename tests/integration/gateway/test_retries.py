"""Istio's retry policy at the gateway: per-try timeout and retries for idempotent requests only."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

from tests.integration.gateway.conftest import Gateway, Upstream, hung

TRY_TIMEOUT = 0.3


def _quick_tries(gateway: Gateway, *, total: float = 5.0) -> None:
    gateway.service.settings.try_timeout_seconds = TRY_TIMEOUT  # type: ignore[attr-defined]
    gateway.service.settings.upstream_timeout_seconds = total  # type: ignore[attr-defined]


async def _timed(gateway: Gateway, method: str, path: str = "/api/products") -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = await gateway.client.request(method, path)
    return answer, time.perf_counter() - started


@asynccontextmanager
async def resetting(id: str) -> AsyncIterator[Upstream]:
    """An instance that reads the request and drops the connection without a word."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    upstream = Upstream(id, url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    upstream.paths = seen  # type: ignore[assignment]
    try:
        yield upstream
    finally:
        server.close()


async def test_a_hung_instance_costs_gets_one_try_timeout_and_no_error_then_it_is_ejected(
    gateway: Gateway,
) -> None:
    _quick_tries(gateway)
    with hung("p-1") as stuck:
        await gateway.add(stuck, Upstream("p-2"), Upstream("p-3"))
        timings = [await _timed(gateway, "GET") for _ in range(30)]
    assert [answer.status_code for answer, _ in timings] == [200] * 30
    slow = [elapsed for _, elapsed in timings if elapsed >= TRY_TIMEOUT]
    # Five timeouts in a row eject it (consecutive5xxErrors counts them); each cost one try timeout.
    assert len(slow) == 5 and all(elapsed < 2 * TRY_TIMEOUT for elapsed in slow)  # one try, not two
    assert gateway.mesh.upstream("product").outliers.is_ejected("p-1")


async def test_a_post_to_a_hung_instance_is_not_sent_twice(gateway: Gateway) -> None:
    _quick_tries(gateway, total=0.6)
    other = Upstream("p-2")
    with hung("p-1") as stuck:
        await gateway.add(stuck, other)
        answer, elapsed = await _timed(gateway, "POST")
    # The service may have seen it: no retry; the whole upstream timeout, then the 503.
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "upstream_unavailable"
    assert 0.6 <= elapsed < 1.5
    assert other.paths == []


async def test_502_503_504_are_retried_for_idempotent_requests_only(gateway: Gateway) -> None:
    _quick_tries(gateway)
    failing = Upstream("p-1", failing=True, failing_status=503)
    fine = Upstream("p-2")
    await gateway.add(failing, fine)
    for _ in range(4):  # round robin starts on each instance in turn
        answer = await gateway.client.get("/api/products")
        assert (answer.status_code, answer.json()["instance"]) == (200, "p-2")
    posts = [await gateway.client.post("/api/products", json={}) for _ in range(2)]
    assert sorted(p.status_code for p in posts) == [200, 503]  # the 503 reached the client as it was
    assert next(p for p in posts if p.status_code == 503).json()["error"]["code"] == "boom"


async def test_a_500_is_an_answer_not_retried(gateway: Gateway) -> None:
    broken, fine = Upstream("p-1", failing=True), Upstream("p-2")
    await gateway.add(broken, fine)
    answers = [await gateway.client.get("/api/products") for _ in range(2)]
    assert sorted(a.status_code for a in answers) == [200, 500]


async def test_retries_stop_after_two_other_instances(gateway: Gateway) -> None:
    _quick_tries(gateway)
    failing = [Upstream(f"p-{n}", failing=True, failing_status=502) for n in range(1, 5)]
    await gateway.add(*failing)
    answer = await gateway.client.get("/api/products")
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "boom"
    assert sum(len(u.paths) for u in failing) == 3  # the first try and two retries


async def test_a_reset_is_retried_for_a_get_and_a_503_for_a_post(gateway: Gateway) -> None:
    _quick_tries(gateway)
    fine = Upstream("p-2")
    async with resetting("p-1") as dropper:
        await gateway.add(dropper, fine)
        gets = [await gateway.client.get("/api/products") for _ in range(4)]
        assert [g.status_code for g in gets] == [200] * 4
        posts = [await gateway.client.post("/api/products", json={}) for _ in range(2)]
    assert sorted(p.status_code for p in posts) == [200, 503]
    dropped = next(p for p in posts if p.status_code == 503)
    assert dropped.json()["error"] == {
        "code": "upstream_unavailable",
        "message": "product service is unavailable",
        "details": {"service": "product"},
    }


async def test_with_no_other_instance_a_hung_one_is_a_503_after_the_upstream_timeout(
    gateway: Gateway,
) -> None:
    _quick_tries(gateway, total=1.0)
    with hung("p-1") as stuck:
        await gateway.add(stuck)
        answer, elapsed = await _timed(gateway, "GET")
    assert answer.status_code == 503 and 1.0 <= elapsed < 1.5


APP = """
import json, os
BODY = json.dumps({"instance": os.environ["INSTANCE"], "version": "v1"}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
"""


@contextmanager
def process_instance(id: str, folder: Path) -> Iterator[tuple[Upstream, subprocess.Popen[bytes]]]:
    """A real uvicorn process answering as `id`."""
    (folder / "instance_app.py").write_text(textwrap.dedent(APP))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "instance_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=folder, env={**os.environ, "INSTANCE": id})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Upstream(id, url=f"http://127.0.0.1:{port}"), process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


async def test_a_sigstopped_process_costs_concurrent_clients_no_errors(
    gateway: Gateway, tmp_path: Path
) -> None:
    _quick_tries(gateway)
    with process_instance("p-1", tmp_path) as (instance, process):
        await gateway.add(instance, Upstream("p-2"), Upstream("p-3"))
        assert set(await gateway.spread("/api/products", 30)) == {"p-1", "p-2", "p-3"}  # all take traffic
        process.send_signal(signal.SIGSTOP)
        started = time.perf_counter()
        seen = await gateway.spread("/api/products", 200, batch=20)
        elapsed = time.perf_counter() - started
        assert set(seen) == {"p-2", "p-3"} and sum(seen.values()) == 200
        assert gateway.mesh.upstream("product").outliers.is_ejected("p-1")
        # Only the first batches waited for the try timeout; once ejected, nothing does.
        assert elapsed < 10 * TRY_TIMEOUT


async def test_a_slow_only_instance_is_waited_for_not_cut_at_the_try_timeout(gateway: Gateway) -> None:
    _quick_tries(gateway, total=5.0)
    gate = asyncio.Event()
    alone = Upstream("p-1", gate=gate)
    await gateway.add(alone)
    asyncio.get_running_loop().call_later(3 * TRY_TIMEOUT, gate.set)
    answer, elapsed = await _timed(gateway, "GET")
    # Nobody else could take a retry: the try timeout would only have made it a 503.
    assert answer.status_code == 200 and answer.json()["instance"] == "p-1"
    assert 3 * TRY_TIMEOUT <= elapsed < 5.0
    assert len(alone.paths) == 1
