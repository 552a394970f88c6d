"""HTTP checks: the registry calls each registered health URL every Interval, within Timeout."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import aiohttp
import structlog

from msashop.registry.model import CheckSpec, Status, http_status
from msashop.registry.state import Registry, UnknownId

log = structlog.get_logger()

OUTPUT_LIMIT = 4096  # bytes of the body kept as the check's output, as Consul keeps


async def probe(session: aiohttp.ClientSession, spec: CheckSpec) -> tuple[Status, str]:
    """One run of an HTTP check: its status and its output (Consul's wording)."""
    headers = {"User-Agent": "Consul Health Check", "Accept": "text/plain, text/*, */*"}
    headers.update({name: ", ".join(values) for name, values in spec.header})
    try:
        async with session.request(
            spec.method,
            spec.http,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=spec.timeout),
            allow_redirects=True,
        ) as response:
            body = await response.content.read(OUTPUT_LIMIT)
            status = http_status(response.status)
            output = f"HTTP {spec.method} {spec.http}: {response.status} {response.reason} Output: "
            return status, output + body.decode(errors="replace")
    except TimeoutError:
        return "critical", f"HTTP {spec.method} {spec.http}: timed out after {spec.timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - refused, reset, bad URL...: all mean critical
        return "critical", f"HTTP {spec.method} {spec.http}: {type(exc).__name__}: {exc}"


class CheckRunner:
    """One task per HTTP check; `sync()` starts, restarts and stops them to match the registry."""

    def __init__(self, registry: Registry, ssl_context: ssl.SSLContext | None = None) -> None:
        self.registry = registry
        # mTLS on: https health URLs answer only our certificates; this is the registry's.
        self.ssl_context = ssl_context
        self._tasks: dict[str, tuple[CheckSpec, asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No connection reuse: a check must see a fresh connection fail when the instance dies.
        connector = aiohttp.TCPConnector(force_close=True, ssl=self.ssl_context or True)
        self._session = aiohttp.ClientSession(connector=connector)
        self.sync()

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def sync(self) -> None:
        if self._session is None:
            return
        wanted = {cid: s.spec for cid, s in self.registry.checks.items() if s.spec.kind == "http"}
        for check_id, (spec, task) in list(self._tasks.items()):
            if wanted.get(check_id) != spec:
                task.cancel()
                del self._tasks[check_id]
        for check_id, spec in wanted.items():
            if check_id not in self._tasks:
                task = asyncio.create_task(self._run(spec), name=f"check:{check_id}")
                self._tasks[check_id] = (spec, task)

    async def _run(self, spec: CheckSpec) -> None:
        # The first run is at once (Consul staggers it over the interval): a new instance is
        # found within a moment of registering, not up to 10 s later.
        assert self._session is not None
        while True:
            status, output = await probe(self._session, spec)
            try:
                before = self.registry.checks[spec.id].status
                self.registry.update_check(spec.id, status, output)
            except UnknownId:
                return  # deregistered while the probe ran
            if status != before:
                log.info("registry.check_status", check=spec.id, status=status, output=output[:200])
            await asyncio.sleep(spec.interval)
