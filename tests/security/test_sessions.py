"""Sessions: refresh-token reuse ends the whole family, logout ends the access and refresh token at
once, and logins, logouts and failed logins are published without secrets."""

from __future__ import annotations

import json

from tests.security.conftest import PASSWORD, bearer, login, register, tokens
from tests.service_harness import ServiceHarness


async def test_presenting_a_spent_refresh_token_revokes_every_token_of_its_family(
    user_api: ServiceHarness,
) -> None:
    client = user_api.client
    await register(client)
    first = await tokens(client)
    elsewhere = await tokens(client)  # another session of the same user
    second = (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    third = (await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()

    # An attacker replays the first (stolen, already spent) refresh token.
    replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "refresh_token_reused"

    # The legitimate holder's newest tokens die with it: refresh and access alike.
    latest = await client.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert latest.status_code == 401
    for pair in (first, second, third):
        me = await client.get("/users/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"
    assert (await client.get("/users/me", headers=bearer(elsewhere["access_token"]))).status_code == 200


async def test_logout_kills_the_access_token_and_the_refresh_token_at_once(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    pair = await tokens(client)
    out = await client.post(
        "/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair["access_token"])
    )
    assert out.status_code == 204
    me = await client.get("/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"
    again = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    # A logged-out access token cannot log out again, nor be refreshed into a new session.
    assert (
        await client.post(
            "/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=bearer(pair["access_token"]),
        )
    ).status_code == 401


async def test_login_logout_and_failures_are_published_without_secrets(user_api: ServiceHarness) -> None:
    client = user_api.client
    user = await register(client)
    assert (await login(client, password="wrong-password-1", ip="198.51.100.7")).status_code == 401
    assert (await login(client, email="nobody@example.com", ip="198.51.100.7")).status_code == 401
    pair = await tokens(client)
    await client.post(
        "/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair["access_token"])
    )

    events = [e for e in await user_api.outbox_events() if e.type != "user.registered"]
    assert [e.type for e in events] == [
        "user.login_failed",
        "user.login_failed",
        "user.logged_in",
        "user.logged_out",
    ]
    failed_wrong, failed_unknown, logged_in, logged_out = (e.data for e in events)
    assert failed_wrong == {"user_id": user["id"], "reason": "wrong_password", "ip": "198.51.100.7"}
    assert failed_unknown == {"user_id": None, "reason": "unknown_email", "ip": "198.51.100.7"}
    assert logged_in["user_id"] == user["id"] and logged_in["session_id"]
    assert logged_out == {"user_id": user["id"], "session_ids": [logged_in["session_id"]]}
    text = json.dumps([e.model_dump(mode="json") for e in events])
    for secret in (PASSWORD, "wrong-password-1", pair["access_token"], pair["refresh_token"], "$argon2"):
        assert secret not in text
    assert "nobody@example.com" not in text
