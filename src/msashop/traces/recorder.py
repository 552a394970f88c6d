"""Between the receiver and the store: received spans wait in a queue that one task writes out in
batches (one transaction each), so a burst of exports is answered at once and never waits for the
disk; reads go to a second connection on a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import structlog
from prometheus_client import Counter, Gauge

from msashop.traces.config import TracesSettings
from msashop.traces.model import SpanRecord
from msashop.traces.store import TraceStore

log = structlog.get_logger()
T = TypeVar("T")

spans_received = Counter("trace_store_spans_received_total", "Spans received over OTLP")
spans_refused = Counter(
    "trace_store_spans_refused_total", "Spans refused with 503 because too many were waiting to be written"
)
spans_stored = Gauge("trace_store_spans", "Spans in the trace store")
traces_stored = Gauge("trace_store_traces", "Traces in the trace store")
traces_pruned = Counter(
    "trace_store_pruned_traces_total", "Traces deleted to keep the store within its bounds"
)


class Recorder:
    def __init__(self, settings: TracesSettings) -> None:
        self.settings = settings
        self._queue: asyncio.Queue[list[SpanRecord]] = asyncio.Queue()
        self._queued = 0
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="traces-write")
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="traces-read")
        self._writer: TraceStore | None = None
        self._reader: TraceStore | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.settings.db_file is not None
        path, s = self.settings.db_file, self.settings

        def open_store() -> TraceStore:
            return TraceStore(path, max_spans=s.max_spans, max_traces=s.max_traces)

        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(self._writes, open_store)  # creates the schema
        self._reader = await loop.run_in_executor(self._reads, open_store)
        await self._publish_counts()
        self._task = asyncio.create_task(self._flush_forever(), name="traces-flush")

    async def stop(self) -> None:
        """Write what is queued (a few seconds at most), then close."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            await loop.run_in_executor(self._writes, self._writer.close)
        if self._reader is not None:
            await loop.run_in_executor(self._reads, self._reader.close)
        self._writes.shutdown(wait=False)
        self._reads.shutdown(wait=False)

    def accept(self, spans: list[SpanRecord]) -> bool:
        """Queue `spans` for writing; False (nothing queued) when too many are waiting already."""
        if not spans:
            return True
        if self._queued + len(spans) > self.settings.max_queued_spans:
            spans_refused.inc(len(spans))
            return False
        self._queued += len(spans)
        self._queue.put_nowait(spans)
        spans_received.inc(len(spans))
        return True

    async def drained(self) -> None:
        """Until everything accepted so far is written (tests, the CLI's freshness)."""
        await self._queue.join()

    async def read(self, work: Callable[[TraceStore], T]) -> T:
        assert self._reader is not None, "the recorder is not started"
        reader = self._reader
        return await asyncio.get_running_loop().run_in_executor(self._reads, work, reader)

    async def _flush_forever(self) -> None:
        while True:
            batches = [await self._queue.get()]
            size = len(batches[0])
            while size < self.settings.flush_max_spans and not self._queue.empty():
                batches.append(self._queue.get_nowait())
                size += len(batches[-1])
            try:
                await self._write([span for batch in batches for span in batch])
            except Exception:  # a failed batch (disk full...) is lost; the next ones may fit
                log.exception("traces.write_failed", spans=size)
            finally:
                self._queued -= size
                for _ in batches:
                    self._queue.task_done()

    async def _write(self, spans: list[SpanRecord]) -> None:
        assert self._writer is not None
        writer = self._writer

        def write() -> int:
            before = writer.pruned
            writer.insert(spans)
            return writer.pruned - before

        traces_pruned.inc(await asyncio.get_running_loop().run_in_executor(self._writes, write))
        await self._publish_counts()

    async def _publish_counts(self) -> None:
        assert self._writer is not None
        spans, traces = await asyncio.get_running_loop().run_in_executor(self._writes, self._writer.counts)
        spans_stored.set(spans)
        traces_stored.set(traces)
