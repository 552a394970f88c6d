"""One supervised child, with small Python programs standing in for services."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from msashop.supervisor.console import PlatformConsole
from msashop.supervisor.process import ChildSpec, StartupFailed, SupervisedProcess
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def program(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def always() -> bool:
    return True


async def never() -> bool:
    return False


def console() -> tuple[PlatformConsole, io.StringIO]:
    out = io.StringIO()
    return PlatformConsole(["worker"], Console(file=out, width=200)), out


async def test_output_goes_prefixed_to_console_and_raw_to_the_log(tmp_path: Path) -> None:
    shown, out = console()
    code = 'print(\'{"event": "job.done", "level": "info", "n": 3}\'); import time; time.sleep(30)'
    child = SupervisedProcess(ChildSpec("worker", program(code), always), shown, tmp_path)
    await child.start()
    await child.wait_healthy(within=10)
    await wait_until(lambda: "job.done" in out.getvalue())
    await child.stop(deadline=time.monotonic() + 10)
    assert "worker │ job.done n=3" in out.getvalue()
    assert (tmp_path / "worker.log").read_text() == '{"event": "job.done", "level": "info", "n": 3}\n'


async def test_a_crashed_child_is_restarted_after_a_second(tmp_path: Path) -> None:
    shown, out = console()
    child = SupervisedProcess(
        ChildSpec("worker", program("import time; time.sleep(30)"), always), shown, tmp_path
    )
    await child.start()
    await child.wait_healthy(within=10)
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    began = time.monotonic()
    await wait_until(lambda: child.pid != first and child.running)
    assert time.monotonic() - began >= 0.9  # the first backoff step
    assert "worker exited with -9, restarting in 1 s" in out.getvalue()
    await child.stop(deadline=time.monotonic() + 10)
    assert not child.running


async def test_a_child_that_crashes_while_starting_fails_the_start_with_its_output(tmp_path: Path) -> None:
    shown, _ = console()
    crash = program("import sys; print('bad setting: MSASHOP_X_PORT'); sys.exit(3)")
    child = SupervisedProcess(ChildSpec("worker", crash, never), shown, tmp_path)
    await child.start()
    with pytest.raises(StartupFailed) as failed:
        await child.wait_healthy(within=30, max_exits=2)
    await child.stop(deadline=time.monotonic() + 5)
    assert "exited 2 times" in str(failed.value)
    assert "bad setting: MSASHOP_X_PORT" in failed.value.tail


async def test_a_child_that_never_gets_healthy_times_out_naming_itself(tmp_path: Path) -> None:
    shown, _ = console()
    child = SupervisedProcess(
        ChildSpec("worker", program("print('waiting forever'); import time; time.sleep(30)"), never),
        shown,
        tmp_path,
    )
    await child.start()
    with pytest.raises(StartupFailed, match="worker was not healthy after 1 s") as failed:
        await child.wait_healthy(within=1)
    await child.stop(deadline=time.monotonic() + 5)
    assert failed.value.tail == ["waiting forever"]


async def test_a_child_ignoring_sigterm_is_killed_at_the_deadline(tmp_path: Path) -> None:
    shown, out = console()
    stubborn = program(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
        "time.sleep(60)"
    )
    child = SupervisedProcess(ChildSpec("worker", stubborn, always), shown, tmp_path)
    await child.start()
    await wait_until(lambda: "ready" in (tmp_path / "worker.log").read_text())
    began = time.monotonic()
    await child.stop(deadline=time.monotonic() + 1)
    assert 0.9 <= time.monotonic() - began < 5
    assert not child.running
    assert "worker did not stop within 1.0 s, killing it" in out.getvalue()
