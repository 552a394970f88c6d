"""One supervised child: spawn it, stream its output, restart it when it dies, stop it in order."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from msashop.supervisor.console import PlatformConsole
from msashop.supervisor.logs import LOUD_LEVELS, LogFile, compact

Probe = Callable[[], Awaitable[bool]]
READ_LIMIT = 1024 * 1024  # a traceback in one JSON line can be long
PROBE_INTERVAL = 0.1
STOP_TIMEOUT = 10.0
TAIL_LINES = 20


def backoff_delay(attempt: int, first: float = 1.0, cap: float = 30.0) -> float:
    """Delay before restart number `attempt` (0-based): 1 s, 2 s, 4 s ... capped at 30 s."""
    return float(min(cap, first * 2.0 ** min(attempt, 30)))


class Backoff:
    """Restart delays that grow while a child keeps dying and start over once it has stayed
    healthy for `reset_after` seconds."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, reset_after: float = 60.0) -> None:
        self.first, self.cap, self.reset_after = first, cap, reset_after
        self.attempt = 0

    def next_delay(self, healthy_for: float | None) -> float:
        if healthy_for is not None and healthy_for >= self.reset_after:
            self.attempt = 0
        delay = backoff_delay(self.attempt, self.first, self.cap)
        self.attempt += 1
        return delay


class StartupFailed(Exception):
    def __init__(self, name: str, reason: str, tail: list[str]) -> None:
        super().__init__(f"{name} {reason}")
        self.name, self.reason, self.tail = name, reason, tail


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    probe: Probe
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    # Quiet children (nats, valkey) show only warnings and errors; the log file has every line.
    quiet: bool = False


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when the supervisor dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded before fork: no dlopen in the child
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


class SupervisedProcess:
    def __init__(self, spec: ChildSpec, console: PlatformConsole, log_dir: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self.console = console
        self.log = LogFile(log_dir / f"{spec.name}.log")
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.backoff = Backoff()
        self.proc: asyncio.subprocess.Process | None = None
        self.exits = 0
        self.healthy_since: float | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._spawn_lock = asyncio.Lock()  # stop() never races a restart's spawn
        self._recovery: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._preexec = _die_with_parent_hook()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        await self._spawn()
        self._watcher = asyncio.create_task(self._watch(), name=f"watch-{self.name}")

    async def _spawn(self) -> None:
        env = {**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        # Cached bytecode halves a service's start (imports dominate it); some shells forbid it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # start_new_session: a terminal Ctrl-C reaches only the supervisor, which then stops
        # the children in order instead of having them all die at once.
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=self._preexec,
            limit=READ_LIMIT,
        )
        self.healthy_since = None
        self._reader = asyncio.create_task(self._read(self.proc), name=f"read-{self.name}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line beyond READ_LIMIT: keep what fits, drop the rest
                raw = await proc.stdout.read(READ_LIMIT)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.log.write(line)
            self.tail.append(line)
            shown = compact(line)
            if shown.level != "debug" and (not self.spec.quiet or shown.level in LOUD_LEVELS):
                self.console.child_line(self.name, shown)

    async def wait_healthy(self, within: float, max_exits: int = 3) -> float:
        """Poll the probe until it passes; seconds taken. Gives up after `within` s or when the
        child keeps crashing before it ever became healthy (restarts won't fix a bad config)."""
        started = time.monotonic()
        first_exits = self.exits
        while time.monotonic() - started < within:
            if self.exits - first_exits >= max_exits:
                raise StartupFailed(self.name, f"exited {max_exits} times while starting", self.log_tail())
            if self.running and await self._probe():
                self.healthy_since = time.monotonic()
                return time.monotonic() - started
            await asyncio.sleep(PROBE_INTERVAL)
        raise StartupFailed(self.name, f"was not healthy after {within:.0f} s", self.log_tail())

    async def _probe(self) -> bool:
        try:
            return await self.spec.probe()
        except Exception:  # noqa: BLE001 - any failure to answer means "not yet"
            return False

    def log_tail(self) -> list[str]:
        return list(self.tail)

    async def _watch(self) -> None:
        while True:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await self._reader
            if self._stopping:
                return
            self.exits += 1
            healthy_for = time.monotonic() - self.healthy_since if self.healthy_since else None
            delay = self.backoff.next_delay(healthy_for)
            self.console.warn(f"{self.name} exited with {code}, restarting in {delay:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), timeout=delay)
            async with self._spawn_lock:
                if self._stopping:
                    return
                await self._spawn()
            self._recovery = asyncio.create_task(self._announce_recovery(), name=f"recover-{self.name}")

    async def _announce_recovery(self) -> None:
        proc = self.proc
        started = time.monotonic()
        while not self._stopping and proc is self.proc and self.running:
            if await self._probe():
                self.healthy_since = time.monotonic()
                self.console.healthy(self.name, self.spec.url, time.monotonic() - started, again=True)
                return
            await asyncio.sleep(PROBE_INTERVAL * 5)

    async def stop(self, deadline: float) -> None:
        """SIGTERM, wait up to 10 s (or until `deadline`, a monotonic time), then SIGKILL."""
        self._stopping = True
        self._stop_event.set()  # wakes a watcher waiting to restart
        async with self._spawn_lock:
            proc = self.proc
        if proc is not None and proc.returncode is None:
            self._signal(proc, signal.SIGTERM)
            wait = max(0.1, min(STOP_TIMEOUT, deadline - time.monotonic()))
            try:
                await asyncio.wait_for(proc.wait(), timeout=wait)
            except TimeoutError:
                self.console.warn(f"{self.name} did not stop within {wait:.1f} s, killing it")
                self._signal(proc, signal.SIGKILL)
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, timeout=1)
        for task in (self._watcher, self._recovery):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.log.close()

    def _signal(self, proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        # The child leads its own process group: signal the group so helpers it started go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
