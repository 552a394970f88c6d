"""Drive `msashop up` as a real subprocess, the way a person at a terminal does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc/<pid>/task/*/children (no psutil needed)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie waiting to be reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@dataclass
class RunningPlatform:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    output_file: Path
    cwd: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def port_map(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.data_dir / "ports.json").read_text())
        return data

    def wait_for_output(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while text not in self.output:
            if self.process.poll() is not None:
                raise AssertionError(f"msashop up exited ({self.process.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not printed within {within} s:\n{self.output}")
            time.sleep(0.1)

    def service_pid(self, name: str) -> int:
        for pid in descendants(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[-3:-1] == [b"serve", name.encode()] and alive(pid):
                return pid
        raise AssertionError(f"no running {name} process under the supervisor")

    def stop(self, sig: int = signal.SIGTERM, within: float = 20.0) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.process.wait(timeout=within)
        return code, time.monotonic() - started


def start_platform(
    tmp_path: Path,
    only: str | None,
    *,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> RunningPlatform:
    port = port or free_port()
    data_dir = tmp_path / "data"
    output_file = tmp_path / "up.out"
    env = {k: v for k, v in os.environ.items() if k != "MSASHOP_ADMIN_PASSWORD"}
    env.update(extra_env or {})
    with output_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "msashop", "up", "--data-dir", str(data_dir), "--port", str(port),
             *(["--only", only] if only else []), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,  # away from any msashop.toml in the repo
            env=env,
        )  # fmt: skip
    return RunningPlatform(data_dir, port, process, output_file, tmp_path, extra_env or {})
