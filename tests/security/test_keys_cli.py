"""`msashop keys list|rotate|retire` through the gateway's admin routes to a running user service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from msashop.chassis.bus.memory import InMemoryBus
from msashop.cli import app
from msashop.gateway.routes import resolve
from msashop.services.user.config import UserSettings
from msashop.services.user.main import create_service
from tests.conftest import free_port
from tests.security.conftest import ADMIN_PASSWORD

runner = CliRunner()


class Routed:
    """The gateway's path mapping (routes.resolve) in front of one service, for the CLI to call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            target = resolve(scope["path"])
            assert target is not None and target.service == "user", scope["path"]
            scope = {**scope, "path": target.path, "raw_path": target.path.encode()}
        await self.inner(scope, receive, send)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose port map names a 'gateway' that routes to a real user service."""
    service = create_service(
        UserSettings.load("user", data_dir=tmp_path, admin_password=ADMIN_PASSWORD), bus=InMemoryBus()
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Routed(service.app), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    (tmp_path / "ports.json").write_text(json.dumps({"gateway": url, "user": url}))
    try:
        yield tmp_path
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def keys(data_dir: Path, *args: str) -> Any:
    return runner.invoke(
        app, ["keys", *args, "--data-dir", str(data_dir), "--admin-password", ADMIN_PASSWORD]
    )


def jwks_kids(data_dir: Path) -> list[str]:
    url = json.loads((data_dir / "ports.json").read_text())["gateway"]
    return [k["kid"] for k in httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]]


def test_rotate_list_and_retire_from_the_command_line(platform: Path) -> None:
    [first] = jwks_kids(platform)

    rotated = keys(platform, "rotate")
    assert rotated.exit_code == 0, rotated.output
    [new, old] = jwks_kids(platform)
    assert old == first and f"new tokens are signed with {new}" in rotated.output

    listed = keys(platform, "list")
    assert listed.exit_code == 0 and "current" in listed.output and "previous" in listed.output

    refused = keys(platform, "retire", new)
    assert refused.exit_code == 1 and "rotate first" in refused.output
    retired = keys(platform, "retire", first)
    assert retired.exit_code == 0 and f"{first} is retired" in retired.output
    assert jwks_kids(platform) == [new]


def test_a_wrong_admin_password_is_a_clear_error(platform: Path) -> None:
    result = runner.invoke(
        app, ["keys", "rotate", "--data-dir", str(platform), "--admin-password", "not-the-password-1"]
    )
    assert result.exit_code == 1 and "refused" in result.output


def test_without_a_running_platform_it_says_so(tmp_path: Path) -> None:
    result = keys(tmp_path, "rotate")
    assert result.exit_code == 1 and "no running platform" in result.output
