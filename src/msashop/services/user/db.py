"""The users, refresh_tokens and signing_keys tables and their repositories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.user.domain import RefreshToken, User
from msashop.services.user.keys import KeyRecord

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON list
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("session_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

# The public half and the dates of every signing key (keys.py); private keys stay in files or the
# environment. Shared by the replicas, so all of them sign with the same current key.
signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(128), primary_key=True),
    sa.Column("jwk", sa.Text, nullable=False),  # JSON, public
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _to_user(row: sa.Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        roles=tuple(json.loads(row.roles)),
        created_at=_utc(row.created_at) or row.created_at,
    )


def _to_token(row: sa.Row[Any]) -> RefreshToken:
    return RefreshToken(
        token_hash=row.token_hash,
        user_id=row.user_id,
        session_id=row.session_id,
        created_at=_utc(row.created_at) or row.created_at,
        expires_at=_utc(row.expires_at) or row.expires_at,
        used_at=_utc(row.used_at),
        revoked_at=_utc(row.revoked_at),
    )


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        row = (await self.session.execute(sa.select(users).where(users.c.id == user_id))).first()
        return _to_user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        """`email` must already be normalised (lowercase), as stored."""
        row = (await self.session.execute(sa.select(users).where(users.c.email == email))).first()
        return _to_user(row) if row else None

    async def get_many(self, ids: list[str]) -> list[User]:
        rows = await self.session.execute(sa.select(users).where(users.c.id.in_(ids)))
        return [_to_user(r) for r in rows]

    async def add(self, user: User) -> None:
        await self.session.execute(
            sa.insert(users).values(
                id=user.id,
                email=user.email,
                name=user.name,
                password_hash=user.password_hash,
                roles=json.dumps(list(user.roles)),
                created_at=user.created_at,
            )
        )

    async def set_credentials(self, user_id: str, *, password_hash: str, roles: tuple[str, ...]) -> None:
        await self.session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, roles=json.dumps(list(roles)))
        )

    async def set_roles(self, user_id: str, roles: tuple[str, ...]) -> None:
        await self.session.execute(
            sa.update(users).where(users.c.id == user_id).values(roles=json.dumps(list(roles)))
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.session.execute(
            sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = (
            await self.session.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).first()
        return _to_token(row) if row else None

    async def add(self, token: RefreshToken) -> None:
        await self.session.execute(
            sa.insert(refresh_tokens).values(
                token_hash=token.token_hash,
                user_id=token.user_id,
                session_id=token.session_id,
                created_at=token.created_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
                revoked_at=token.revoked_at,
            )
        )

    async def spend(self, token_hash: str, now: datetime) -> bool:
        """Mark the token used if nobody did yet. False: a concurrent request spent it first."""
        result = await self.session.execute(
            sa.update(refresh_tokens)
            .where(
                refresh_tokens.c.token_hash == token_hash,
                refresh_tokens.c.used_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
        return cast(sa.CursorResult[Any], result).rowcount == 1

    async def open_sessions(self, user_id: str) -> list[str]:
        """The user's sessions with a refresh token not revoked (they may still get access tokens)."""
        rows = await self.session.execute(
            sa.select(refresh_tokens.c.session_id)
            .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
            .distinct()
        )
        return sorted(row.session_id for row in rows)

    async def revoke_session(self, session_id: str, now: datetime) -> None:
        """Revoke every token of the family that is not revoked yet."""
        await self.session.execute(
            sa.update(refresh_tokens)
            .where(refresh_tokens.c.session_id == session_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def _to_key(row: sa.Row[Any]) -> KeyRecord:
    return KeyRecord(
        kid=row.kid,
        jwk=json.loads(row.jwk),
        created_at=_utc(row.created_at) or row.created_at,
        activated_at=_utc(row.activated_at),
        superseded_at=_utc(row.superseded_at),
        retired_at=_utc(row.retired_at),
    )


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[KeyRecord]:
        rows = await self.session.execute(sa.select(signing_keys).order_by(signing_keys.c.created_at))
        return [_to_key(r) for r in rows]

    async def add(self, record: KeyRecord) -> None:
        await self.session.execute(
            sa.insert(signing_keys).values(
                kid=record.kid,
                jwk=json.dumps(record.jwk, sort_keys=True),
                created_at=record.created_at,
                activated_at=record.activated_at,
                superseded_at=record.superseded_at,
                retired_at=record.retired_at,
            )
        )

    async def _set(self, kid: str, *conditions: sa.ColumnElement[bool], **values: datetime) -> bool:
        result = await self.session.execute(
            sa.update(signing_keys).where(signing_keys.c.kid == kid, *conditions).values(**values)
        )
        return cast(sa.CursorResult[Any], result).rowcount == 1

    async def activate(self, kid: str, now: datetime) -> bool:
        """Make a pending key current. False: it is not pending (any more)."""
        return await self._set(
            kid, signing_keys.c.activated_at.is_(None), signing_keys.c.retired_at.is_(None), activated_at=now
        )

    async def supersede(self, kid: str, now: datetime) -> bool:
        """The current key becomes a previous one. False: a concurrent rotation did it first."""
        return await self._set(kid, signing_keys.c.superseded_at.is_(None), superseded_at=now)

    async def retire(self, kid: str, now: datetime) -> bool:
        return await self._set(kid, signing_keys.c.retired_at.is_(None), retired_at=now)
