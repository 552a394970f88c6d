"""Repeated failed logins are throttled per account (5 per 15 minutes) and per IP (20 per 15
minutes), with one answer whether the email exists or not, on the store all replicas share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.conftest import PASSWORD, bearer, login, register, tokens, user_service
from tests.service_harness import ServiceHarness

WINDOW = 15 * 60


def assert_throttled(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {
        "error": {"code": "rate_limited", "message": "too many failed logins; try again later"}
    }
    assert WINDOW - 60 < int(response.headers["retry-after"]) <= WINDOW
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) > 0


async def fail(client: httpx.AsyncClient, email: str, times: int, *, ip: str | None = None) -> list[Any]:
    """`times` wrong passwords; each from its own IP unless `ip` is given."""
    bodies = []
    for n in range(times):
        response = await login(client, email, "wrong-password-1", ip=ip or f"203.0.113.{n + 10}")
        assert response.status_code == 401, response.text
        bodies.append(response.json())
    return bodies


async def test_five_failures_lock_an_account_known_or_not_with_one_answer(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    # From a new IP for every try: changing addresses does not get around the account's limit.
    known = await fail(client, "alice@example.com", 5)
    unknown = await fail(client, "ghost@example.com", 5)
    assert known == unknown  # every 401 alike: nothing tells which account exists

    # The sixth try is refused before any password check, even with the right password.
    locked_known = await login(client, "alice@example.com", PASSWORD, ip="192.0.2.99")
    locked_unknown = await login(client, "ghost@example.com", PASSWORD, ip="192.0.2.99")
    assert_throttled(locked_known, 5)
    assert_throttled(locked_unknown, 5)
    assert locked_known.json() == locked_unknown.json()
    # Another account is not affected.
    await register(client, "bob@example.com")
    assert (await login(client, "bob@example.com", ip="192.0.2.99")).status_code == 200


async def test_twenty_failures_from_one_ip_throttle_every_account_from_it(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    attacker = "198.51.100.66"
    for n in range(20):  # one guess per account: under every account's limit
        await fail(client, f"victim{n}@example.com", 1, ip=attacker)

    assert_throttled(await login(client, "alice@example.com", PASSWORD, ip=attacker), 20)
    assert_throttled(await login(client, "ghost@example.com", PASSWORD, ip=attacker), 20)
    assert (await login(client, "alice@example.com", PASSWORD, ip="198.51.100.67")).status_code == 200


async def test_a_successful_login_clears_the_accounts_failures(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    await fail(client, "alice@example.com", 4)
    await tokens(client)
    await fail(client, "alice@example.com", 4)
    assert (await login(client)).status_code == 200


async def test_rate_limits_off_turns_the_throttle_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSASHOP_RATE_LIMITS", "off")
    async with user_service(tmp_path) as user:
        await register(user.client)
        await fail(user.client, "alice@example.com", 8, ip="203.0.113.5")
        assert (await login(user.client)).status_code == 200


async def test_the_throttle_and_revocations_hold_across_replicas_on_the_shared_store(
    tmp_path: Path, valkey_url: str
) -> None:
    async with (
        user_service(tmp_path, store_url=valkey_url) as a,
        user_service(tmp_path, store_url=valkey_url) as b,
    ):
        await register(a.client)
        await fail(a.client, "alice@example.com", 3)
        await fail(b.client, "alice@example.com", 2)
        assert_throttled(await login(a.client), 5)
        assert_throttled(await login(b.client), 5)

        await register(a.client, "bob@example.com")
        pair = await tokens(a.client, "bob@example.com")
        out = await a.client.post(
            "/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=bearer(pair["access_token"]),
        )
        assert out.status_code == 204
        me = await b.client.get("/users/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"
