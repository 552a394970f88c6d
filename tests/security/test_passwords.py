"""Passwords: argon2id hashes only, a minimum policy at registration, one error for a wrong password
and an unknown email."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from msashop.services.user.db import users
from msashop.services.user.domain import password_problems
from tests.security.conftest import PASSWORD, login, register
from tests.service_harness import ServiceHarness


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Sh0rt-pass", None),
        ("short1", "at least 10 characters"),
        ("onlyletters-here", "at least one digit"),
        ("12345678901234", "at least one letter"),
        ("alice@example.com1", "not the email address"),
        ("ALICE@EXAMPLE.COM-2024", "not the email address"),
        ("alice1234567", "not the email address"),
    ],
)
def test_the_policy_names_what_is_wrong(password: str, problem: str | None) -> None:
    problems = password_problems(password, "alice@example.com")
    assert problems == ([problem] if problem else [])


def test_a_short_local_part_is_not_held_against_a_password() -> None:
    assert password_problems("al-is-fine-2024", "al@example.com") == []


@pytest.mark.parametrize("password", ["short1", "onlyletters-here", "12345678901234", "alice@example.com1"])
async def test_a_weak_password_is_refused_at_registration(user_api: ServiceHarness, password: str) -> None:
    response = await user_api.client.post(
        "/auth/register", json={"email": "alice@example.com", "password": password, "name": "A"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


async def test_passwords_are_stored_as_argon2id_hashes(user_api: ServiceHarness) -> None:
    await register(user_api.client)
    async with user_api.service.unit_of_work() as uow:
        stored = (await uow.session.execute(sa.select(users.c.password_hash))).scalars().all()
    assert stored and all(h.startswith("$argon2id$") for h in stored)
    assert all(PASSWORD not in h for h in stored)


async def test_wrong_password_and_unknown_email_get_the_same_answer(user_api: ServiceHarness) -> None:
    client = user_api.client
    await register(client)
    wrong = await login(client, password="wrong-password-1")
    unknown = await login(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == {"code": "invalid_credentials", "message": "email or password is wrong"}
