"""Debian's promtool (apt-get install prometheus), run by the deploy tests; never installed here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def promtool_binary() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (apt-get install prometheus, or make prometheus)")
        raise AssertionError("unreachable")
    return found


def promtool(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [promtool_binary(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done
