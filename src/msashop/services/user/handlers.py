"""Auth commands: register, log in, rotate and end sessions, seed the admin.

Passwords are hashed with argon2 (pwdlib) in a worker thread, and never inside a transaction:
on SQLite a transaction holds the database's write lock, and a hash takes ~100 ms.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import NoReturn

import structlog
from pwdlib import PasswordHash
from sqlalchemy.exc import IntegrityError

from msashop.chassis.auth import Principal
from msashop.chassis.errors import Conflict, NotFound, Unauthorized, Unprocessable
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import wrap
from msashop.contracts.events import UserLoggedIn, UserLoggedOut, UserLoginFailed, UserRegistered
from msashop.services.user.db import RefreshTokenRepository, UserRepository
from msashop.services.user.domain import (
    ADMIN,
    ADMIN_EMAIL,
    CUSTOMER,
    RefreshVerdict,
    User,
    WeakPassword,
    check_password,
    hash_refresh_token,
    normalise_email,
    password_problems,
    refresh_verdict,
)
from msashop.services.user.throttle import LoginThrottle
from msashop.services.user.tokens import TokenIssuer, TokenPair

log = structlog.get_logger()
SOURCE = "user"
# One message for an unknown email and a wrong password: the answer must not tell which.
INVALID_CREDENTIALS = "email or password is wrong"

_passwords = PasswordHash.recommended()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_passwords.hash, password)


async def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(matches, a re-hash when the stored hash uses outdated parameters)."""
    return await asyncio.to_thread(_passwords.verify_and_update, password, password_hash)


@functools.cache
def _dummy_hash() -> str:
    return _passwords.hash(secrets.token_urlsafe(16))


async def register(uow: UnitOfWork, *, email: str, password: str, name: str) -> User:
    email = normalise_email(email)
    try:
        check_password(password, email)
    except WeakPassword as exc:
        raise Unprocessable(str(exc)) from None
    password_hash = await hash_password(password)  # before the first query, see the module doc
    users = UserRepository(uow.session)
    if await users.get_by_email(email) is not None:
        raise Conflict("an account with this email exists", code="email_taken")
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        name=name,
        password_hash=password_hash,
        roles=(CUSTOMER,),
        created_at=datetime.now(UTC),
    )
    try:
        await users.add(user)
    except IntegrityError:  # a concurrent registration of the same email won the race
        raise Conflict("an account with this email exists", code="email_taken") from None
    uow.publish(wrap(UserRegistered(user_id=user.id, email=email, name=name), source=SOURCE, key=user.id))
    log.info("user.registered", user_id=user.id)
    return user


async def login(
    new_uow: Callable[[], UnitOfWork],
    issuer: TokenIssuer,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    ip: str,
) -> TokenPair:
    """Check the credentials and start a session. Short transactions around the hash check.

    Throttled (LoginThrottled) before any work when the account or the IP failed too often.
    """
    email = normalise_email(email)
    await throttle.check(email, ip)
    async with new_uow() as uow:
        user = await UserRepository(uow.session).get_by_email(email)
    if user is None:
        # The same argon2 work as a real check, so the answer time does not tell which emails exist.
        await asyncio.to_thread(_passwords.verify, password, await asyncio.to_thread(_dummy_hash))
        await _failed(new_uow, throttle, email, ip, None, "unknown_email")
    matches, new_hash = await verify_password(password, user.password_hash)
    if not matches:
        await _failed(new_uow, throttle, email, ip, user.id, "wrong_password")
    await throttle.succeeded(email)
    pair, token = issuer.issue(user, uuid.uuid4().hex, datetime.now(UTC))
    async with new_uow() as uow:
        await RefreshTokenRepository(uow.session).add(token)
        if new_hash:
            await UserRepository(uow.session).set_password_hash(user.id, new_hash)
        event = UserLoggedIn(user_id=user.id, session_id=token.session_id, ip=ip)
        uow.publish(wrap(event, source=SOURCE, key=user.id))
        await uow.commit()
    log.info("user.logged_in", user_id=user.id, session_id=token.session_id)
    return pair


async def _failed(
    new_uow: Callable[[], UnitOfWork],
    throttle: LoginThrottle,
    email: str,
    ip: str,
    user_id: str | None,
    reason: str,
) -> NoReturn:
    """Count the failure, publish it, and answer the one 401 both kinds of failure get."""
    await throttle.failed(email, ip)
    async with new_uow() as uow:
        event = UserLoginFailed(user_id=user_id, reason=reason, ip=ip)
        uow.publish(wrap(event, source=SOURCE, key=user_id or ip))
        await uow.commit()
    log.info("user.login_failed", user_id=user_id, reason=reason, ip=ip)
    raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")


async def refresh(uow: UnitOfWork, issuer: TokenIssuer, raw_token: str) -> TokenPair:
    """Spend a refresh token for a new pair in the same session; a spent one ends the session.

    Commits itself: on reuse the revocation must be kept although the call answers 401, and the
    revocation store is told only once the database holds it.
    """
    now = datetime.now(UTC)
    tokens = RefreshTokenRepository(uow.session)
    token = await tokens.get(hash_refresh_token(raw_token))
    if token is None or refresh_verdict(token.state(now)) is RefreshVerdict.REJECT:
        raise Unauthorized("refresh token is not valid", code="invalid_refresh_token")
    verdict = refresh_verdict(token.state(now))
    if verdict is RefreshVerdict.ROTATE and not await tokens.spend(token.token_hash, now):
        verdict = RefreshVerdict.END_SESSION  # a concurrent request spent it: two holders, one too many
    if verdict is RefreshVerdict.END_SESSION:
        await tokens.revoke_session(token.session_id, now)
        await uow.commit()
        await issuer.end_sessions([token.session_id])
        log.warning("refresh_token.reused", user_id=token.user_id, session_id=token.session_id)
        raise Unauthorized(
            "refresh token was already used; the session is ended", code="refresh_token_reused"
        )
    user = await UserRepository(uow.session).get(token.user_id)
    if user is None:
        raise Unauthorized("refresh token is not valid", code="invalid_refresh_token")
    pair, new_token = issuer.issue(user, token.session_id, now)
    await tokens.add(new_token)
    await uow.commit()
    return pair


async def logout(uow: UnitOfWork, issuer: TokenIssuer, caller: Principal, raw_token: str) -> None:
    """End the caller's session and the presented refresh token's session, wherever it belongs.

    A refresh token of another user is revoked too: whoever presents it holds a leaked copy, and
    revoking gives them nothing they could not already do (they could spend it themselves), while
    it protects the owner. The answer is the same either way, so it tells nothing about the token.
    Commits itself, for the same reason as `refresh`.
    """
    now = datetime.now(UTC)
    tokens = RefreshTokenRepository(uow.session)
    sessions = {str(caller.claims["sid"])} if caller.claims.get("sid") else set()
    token = await tokens.get(hash_refresh_token(raw_token))
    if token is not None:
        if token.user_id != caller.user_id:
            log.warning("logout.foreign_refresh_token", user_id=caller.user_id, owner=token.user_id)
        sessions.add(token.session_id)
    for sid in sorted(sessions):
        await tokens.revoke_session(sid, now)
    event = UserLoggedOut(user_id=caller.user_id, session_ids=sorted(sessions))
    uow.publish(wrap(event, source=SOURCE, key=caller.user_id))
    await uow.commit()
    if caller.claims:  # the caller's own token; none when a service vouched for them (headers)
        await issuer.revoke_access_token(caller.claims)
    await issuer.end_sessions(sessions)
    log.info("user.logged_out", user_id=caller.user_id)


async def seed_admin(uow: UnitOfWork, password: str) -> bool:
    """Make `admin@msashop.local` exist with this password and only the admin role. True if changed.

    No user.registered event: the operator's account is not a customer to welcome.
    """
    if problems := password_problems(password, ADMIN_EMAIL):
        log.warning("admin.weak_password", problems=problems)
    users = UserRepository(uow.session)
    admin = await users.get_by_email(ADMIN_EMAIL)
    if admin is None:
        await users.add(
            User(
                id=str(uuid.uuid4()),
                email=ADMIN_EMAIL,
                name="Administrator",
                password_hash=await hash_password(password),
                roles=(ADMIN,),
                created_at=datetime.now(UTC),
            )
        )
        log.info("admin.created")
        return True
    matches, _ = await verify_password(password, admin.password_hash)
    if matches and admin.roles == (ADMIN,):
        return False
    new_hash = admin.password_hash if matches else await hash_password(password)
    await users.set_credentials(admin.id, password_hash=new_hash, roles=(ADMIN,))
    log.info("admin.updated", password_changed=not matches)
    return True


async def set_roles(
    uow: UnitOfWork, issuer: TokenIssuer, admin: Principal, user_id: str, roles: tuple[str, ...]
) -> User:
    """Give a user exactly `roles` (known ones, checked at the edge). Commits itself.

    A role taken away must not live on in tokens already issued: the user's sessions end, so they
    log in again with what they have now. A role added shows in the next token (refresh or login).
    An admin cannot take the admin role from themselves (the shop could be left without one).
    """
    users = UserRepository(uow.session)
    user = await users.get(user_id)
    if user is None:
        raise NotFound("user not found")
    if user.id == admin.user_id and ADMIN in user.roles and ADMIN not in roles:
        raise Conflict("an admin cannot take the admin role from themselves", code="own_admin_role")
    removed = set(user.roles) - set(roles)
    await users.set_roles(user.id, roles)
    sessions: list[str] = []
    if removed:
        tokens = RefreshTokenRepository(uow.session)
        sessions = await tokens.open_sessions(user.id)
        now = datetime.now(UTC)
        for sid in sessions:
            await tokens.revoke_session(sid, now)
    await uow.commit()
    await issuer.end_sessions(sessions)
    log.info(
        "user.roles_changed",
        user_id=user.id,
        by=admin.user_id,
        roles=list(roles),
        sessions_ended=len(sessions),
    )
    return replace(user, roles=roles)
