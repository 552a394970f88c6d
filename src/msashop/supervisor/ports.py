"""Port assignment and the port map (`<data-dir>/ports.json`) the services discover each other by."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

HOST = "127.0.0.1"


class PortInUse(Exception):
    def __init__(self, port: int, what: str) -> None:
        super().__init__(f"port {port} ({what}) is already in use")
        self.port = port
        self.what = what


def ensure_free(port: int, what: str) -> None:
    """Raise PortInUse when nothing can listen on 127.0.0.1:`port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: connections of a platform just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(port, what) from None
            raise


def free_ports(count: int, exclude: Iterable[int] = ()) -> list[int]:
    """`count` distinct ports the OS reports free. All sockets stay open until every port is
    picked, so one call never hands out the same port twice."""
    excluded = set(exclude)
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            if port not in excluded:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def base_url(port: int, scheme: str = "http") -> str:
    return f"{scheme}://{HOST}:{port}"


def write_port_map(path: Path, urls: Mapping[str, str | list[str]]) -> None:
    """Write atomically: readers (every service's discovery) never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(urls, indent=2) + "\n")
    os.replace(tmp, path)


def read_port_map(path: Path) -> dict[str, str]:
    """{service: url}; a service with replicas is represented by its first instance."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a port map")
    return {str(k): str(v[0] if isinstance(v, list) else v) for k, v in data.items() if v}


def read_instances(path: Path) -> dict[str, str]:
    """{instance name: url} for every instance: `product`, `product-2`, ... for replicas."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a port map")
    found: dict[str, str] = {}
    for service, urls in data.items():
        for n, url in enumerate(urls if isinstance(urls, list) else [urls], start=1):
            found[str(service) if n == 1 else f"{service}-{n}"] = str(url)
    return found


def remove_port_map(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
