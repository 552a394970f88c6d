"""Startup, memory and shutdown of the whole platform.

    .venv/bin/python bench/startup.py [--only product,gateway]

Runs `msashop up` on a temporary data dir and a free port; measures the time until the
gateway's /health answers 200 (or, with --only and no gateway, until the summary is printed),
the total resident memory of the supervisor and all its descendants, and the time a SIGTERM
takes to stop everything. Not a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc/<pid>/task/*/children (psutil is not installed)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            new = set(children) - found
            found |= new
            todo.extend(new)
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(only: str | None) -> int:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="msashop-bench-") as tmp:
        argv = [sys.executable, "-m", "msashop", "up", "--data-dir", f"{tmp}/data", "--port", str(port)]
        if only:
            argv += ["--only", only]
        out = Path(tmp) / "up.out"
        started = time.monotonic()
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                argv,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env={**os.environ, "MSASHOP_ADMIN_PASSWORD": "bench-admin-password"},
            )
        try:
            with_gateway = not only or "gateway" in only.split(",")
            while True:
                ready = (
                    healthy(f"http://127.0.0.1:{port}/health")
                    if with_gateway
                    else "msashop is up" in out.read_text()
                )
                if ready:
                    break
                if proc.poll() is not None or time.monotonic() - started > TIMEOUT:
                    print(out.read_text())
                    print("error: the platform did not come up", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            startup = time.monotonic() - started
            time.sleep(1)  # let the children settle after their first requests
            pids = {proc.pid, *descendants(proc.pid)}
            total = sum(rss_kib(pid) for pid in pids)
            stop_started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            shutdown = time.monotonic() - stop_started
        finally:
            if proc.poll() is None:
                proc.kill()
    print(f"startup until healthy: {startup:.1f} s")
    print(f"memory (RSS, {len(pids)} processes): {total / 1024:.0f} MiB")
    print(f"shutdown: {shutdown:.1f} s (exit code {code})")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="a subset of components, comma separated (debugging)")
    sys.exit(main(parser.parse_args().only))
