"""`msashop status`: ask every component in the port map whether it is ready."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from msashop.chassis import tls
from msashop.supervisor.certificates import tls_dir
from msashop.supervisor.console import PlatformConsole
from msashop.supervisor.ports import read_instances
from msashop.supervisor.probes import Prober


async def check(ports_file: Path) -> list[tuple[str, str, bool, str]]:
    """(name, url, ready, detail) for each instance of each component, in port-map order."""
    urls = read_instances(ports_file)
    # mTLS on (https in the port map): the services answer only the holders of our certificates.
    files = tls.TlsFiles.of(tls_dir(ports_file.parent), "supervisor")
    mtls = any(url.startswith("https:") for url in urls.values()) and not files.missing()
    async with Prober(tls.client_context(files) if mtls else None) as prober:
        answers = await asyncio.gather(*(_ready(prober, url) for url in urls.values()))
    return [(name, url, ok, detail) for (name, url), (ok, detail) in zip(urls.items(), answers, strict=True)]


async def _ready(prober: Prober, url: str) -> tuple[bool, str]:
    status, body = await prober.http(f"{url}/ready")
    if status == 404:
        status, body = await prober.http(f"{url}/health")
    if status == 0:
        return False, body
    return status == 200, _detail(status, body)


def _detail(status: int, body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    checks = data.get("checks") or data.get("services") if isinstance(data, dict) else None
    if isinstance(checks, dict) and checks:
        return ", ".join(f"{k}: {_state(v)}" for k, v in checks.items())
    return f"HTTP {status}"


def _state(check: object) -> str:
    """A /ready check (`{"status", "response_time_ms", "error"?}`) or a gateway service state."""
    if not isinstance(check, dict):
        return str(check)
    shown = f"{check.get('status')} ({check.get('response_time_ms')} ms)"
    return f"{shown}: {check['error']}" if check.get("error") else shown


def run_status(data_dir: Path, console: PlatformConsole) -> int:
    ports_file = data_dir / "ports.json"
    try:
        rows = asyncio.run(check(ports_file))
    except FileNotFoundError:
        console.error(f"no running platform in {data_dir.resolve()} ({ports_file.name} not found)")
        return 1
    except ValueError as exc:
        console.error(f"{ports_file} is unreadable: {exc}")
        return 1
    console.status_table(rows)
    return 0 if rows and all(ok for _, _, ok, _ in rows) else 1
