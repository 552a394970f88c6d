"""`msashop serve legacy` runs the monolith as its own process on its own database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def test_serve_legacy_starts_the_monolith_on_its_own_database(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MSASHOP_LEGACY_PORT": str(port), "MSASHOP_LEGACY_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "msashop", "serve", "legacy"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else b""
                assert time.monotonic() < deadline, "legacy did not answer /health"
                time.sleep(0.1)
        assert health.json()["service"] == "legacy"
        listing = httpx.get(f"http://127.0.0.1:{port}/legacy/products", timeout=5).json()
        assert listing["totalCount"] == 0  # empty until the product service's events arrive
        assert (tmp_path / "db" / "legacy.sqlite").is_file()
    finally:
        process.terminate()
        process.wait(timeout=15)
