"""py-consul calls from async code: a client per URL, each call in a daemon thread.

py-consul is synchronous (requests). A blocking query holds its thread for up to `wait`: on the
loop's default executor a few watches would starve every other `to_thread` user, and executor
threads are joined at exit, so a stopping service would wait out its watches. A daemon thread
per call has neither problem; calls are rare (one per watch answer, one per registration).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import consul

from msashop.chassis.tls import TlsFiles

T = TypeVar("T")


def consul_client(url: str, token: str | None = None, tls: TlsFiles | None = None) -> Any:
    """A py-consul client for `url` (http://host:port); `tls`: mTLS on, our certificate shown
    and only our CA trusted."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    secure: dict[str, Any] = {"verify": str(tls.ca), "cert": (str(tls.cert), str(tls.key))} if tls else {}
    return consul.Consul(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8500,
        scheme=parts.scheme or "http",
        token=token,
        **secure,
    )


async def in_thread(call: Callable[[], T]) -> T:
    """Run a blocking call in a daemon thread and await its result (see the module docstring)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="consul-call", daemon=True).start()
    return await future
