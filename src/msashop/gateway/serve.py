"""Running the gateway: one process, or `workers` processes sharing its port.

The gateway's limit is CPU (one core per process: see the README's performance section), so
`MSASHOP_GATEWAY_WORKERS=N` forks N processes that listen on the same port with SO_REUSEPORT;
the kernel spreads new connections over them. `MSASHOP_GATEWAY_REUSE_PORT=true` sets the option
with a single worker too, so that separately started gateway processes (the supervisor's) can
share the port. Off by default: a second platform started on a port in use must fail, not
quietly take half of the first one's connections.

Each worker is a whole gateway with its own connection pools, outlier detection and connection
limits (so a service's `maxConnections` is per worker, as Envoy's are per proxy instance).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import traceback
from typing import NoReturn

import uvicorn

from msashop.gateway.config import GatewaySettings

PR_SET_PDEATHSIG = 1


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve() -> None:
    """`msashop serve gateway`: bind, fork the other workers, run uvicorn in each."""
    settings = GatewaySettings.load("gateway")
    workers = max(1, settings.workers)
    reuse_port = settings.reuse_port or workers > 1
    # Bound before forking, so a port in use fails the start at once.
    sock = listening_socket(settings.host, settings.port, reuse_port=reuse_port)
    # A SIGTERM while forking waits until the handler below is in place (else the parent could
    # die with workers it has not stopped yet).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    parent, children = os.getpid(), list[int]()
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            _worker(sock, settings, parent)  # never returns
        children.append(pid)
    terminated = False

    def on_term(sig: int, _: object) -> None:
        # Before uvicorn runs (or once it has stopped and re-raised the signal to end the
        # process): unwind, so the workers are stopped below, whenever the signal came.
        nonlocal terminated
        terminated = True
        raise SystemExit(128 + sig)

    if children:
        signal.signal(signal.SIGTERM, on_term)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        _run(sock)
    except SystemExit:
        if not terminated:
            raise
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    if terminated:  # end as the SIGTERM would have ended it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


def _worker(inherited: socket.socket, settings: GatewaySettings, parent: int) -> NoReturn:
    """A forked worker: never back into the parent's code, whatever happens."""
    code = 1
    try:
        _die_with_parent()
        if os.getppid() == parent:  # else it died before that took effect: end now
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            # Its own socket on the port: the kernel balances connections across the sockets
            # (one shared socket would wake every worker for each connection and favour some).
            inherited.close()
            _run(listening_socket(settings.host, settings.port, reuse_port=True))
            code = 0
    except Exception:  # noqa: BLE001 - shown, then the worker ends with 1 (never returns)
        traceback.print_exc()
    finally:
        os._exit(code)


def _run(sock: socket.socket) -> None:
    # Imported here, after the fork: each worker builds its own app, pools and event loop.
    from msashop.gateway.main import create_service
    from msashop.gateway.server_protocol import GatewayHttpProtocol

    service = create_service()
    config = uvicorn.Config(
        service.app,
        loop="uvloop",
        http=GatewayHttpProtocol,
        # The gateway is the edge: a client's X-Forwarded-For is not its address (uvicorn would
        # believe any local client's), and the header is set from the real peer (headers.py).
        proxy_headers=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=8,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


def _die_with_parent() -> None:
    """A worker must not outlive the process the supervisor watches (even one killed -9)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the parent still stops its workers on a normal exit
