"""The running registry: state, its file, the HTTP checks, the reaper and the blocking-query waits."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog
from prometheus_client import Gauge

from msashop.chassis.tls import client_context
from msashop.registry.checks import CheckRunner
from msashop.registry.config import RegistrySettings
from msashop.registry.model import STATUSES
from msashop.registry.state import Registry
from msashop.registry.store import StateFile
from msashop.registry.views import Node

log = structlog.get_logger()

registry_instances = Gauge(
    "registry_instances", "Registered instances by service and health status", ["service", "status"]
)


class Changes:
    """Wakes blocking queries when the registry's index moves."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def close(self) -> None:
        """Answer every waiting query now (with what is current): the registry is stopping."""
        self.closed = True
        self.notify()

    async def wait_past(self, current: Callable[[], int], index: int, seconds: float) -> None:
        """Return once `current()` is above `index`, or after `seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while current() <= index and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


class RegistryAgent:
    def __init__(self, settings: RegistrySettings, clock: Callable[[], float] = time.time) -> None:
        assert settings.state_file is not None
        self.settings = settings
        self.registry = Registry(clock)
        self.node = Node(settings.node_name, settings.advertise_address, settings.datacenter)
        self.store = StateFile(settings.state_file)
        self.runner = CheckRunner(self.registry, client_context(settings.tls_files()))
        self.changes = Changes()
        self._save_scheduled = False
        self._reaper: asyncio.Task[None] | None = None
        self.registry.on_change(self._changed)

    async def start(self) -> None:
        if self.store.load(self.registry):
            log.info("registry.restored", instances=len(self.registry.services), path=str(self.store.path))
        self._report()
        await self.runner.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="registry-reaper")
        self._answer_waiters_on_exit_signal()

    def _answer_waiters_on_exit_signal(self) -> None:
        """uvicorn lets open requests finish before the app's shutdown runs (up to its graceful
        timeout), and watches hold a blocking query open for up to `wait`: without this, every
        stop would take the whole timeout. Wraps the handler uvicorn installed for the run."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def wrap(previous: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
            def handler(number: int, frame: FrameType | None) -> None:
                loop.call_soon_threadsafe(self.changes.close)
                previous(number, frame)

            return handler

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if callable(previous):
                signal.signal(signum, wrap(previous))

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        self.changes.close()
        await self.runner.stop()
        self.store.save(self.registry)

    def _changed(self) -> None:
        self.changes.notify()
        self.runner.sync()
        self._report()
        # Several changes in one turn of the loop (a registration with its checks) make one write.
        if not self._save_scheduled:
            self._save_scheduled = True
            asyncio.get_running_loop().call_soon(self._save)

    def _save(self) -> None:
        self._save_scheduled = False
        try:
            self.store.save(self.registry)
        except OSError:
            log.exception("registry.save_failed", path=str(self.store.path))

    def _report(self) -> None:
        counts = Counter(
            (record.spec.name, self.registry.status_of(service_id))
            for service_id, record in self.registry.services.items()
        )
        registry_instances.clear()
        for name in {record.spec.name for record in self.registry.services.values()}:
            for status in STATUSES:
                registry_instances.labels(service=name, status=status).set(counts[(name, status)])

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reap_interval_seconds)
            try:
                for service_id in self.registry.tick():
                    log.warning("registry.deregistered_critical", service_id=service_id)
            except Exception:  # the reaper must survive one bad pass
                log.exception("registry.reap_failed")
