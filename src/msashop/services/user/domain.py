"""Users, passwords and refresh-token sessions: the rules. No I/O here."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

ADMIN_EMAIL = "admin@msashop.local"
CUSTOMER = "customer"
ADMIN = "admin"

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128  # argon2 takes any length; the bound keeps hashing cost per request fixed


class WeakPassword(ValueError):
    pass


def normalise_email(email: str) -> str:
    """The form emails are stored and looked up in, so uniqueness is case-insensitive."""
    return email.strip().lower()


def password_problems(password: str, email: str = "") -> list[str]:
    """Every way `password` breaks the policy; empty when it is acceptable.

    At least 10 characters, a letter and a digit (so never all one class), and not built on the
    account's email: the email, or its part before the @ (4 characters or more) inside it.
    """
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"at most {PASSWORD_MAX_LENGTH} characters")
    if not any(c.isalpha() for c in password):
        problems.append("at least one letter")
    if not any(c.isdigit() for c in password):
        problems.append("at least one digit")
    if email and _contains_email(password, email):
        problems.append("not the email address")
    return problems


def _contains_email(password: str, email: str) -> bool:
    lowered, email = password.lower(), normalise_email(email)
    local = email.partition("@")[0]
    return email in lowered or (len(local) >= 4 and local in lowered)


def check_password(password: str, email: str = "") -> None:
    if problems := password_problems(password, email):
        raise WeakPassword("password needs " + ", ".join(problems))


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: datetime


class RefreshState(StrEnum):
    USABLE = "usable"
    SPENT = "spent"  # already exchanged for a new pair
    REVOKED = "revoked"  # its session was ended (logout or reuse detected)
    EXPIRED = "expired"


class RefreshVerdict(StrEnum):
    ROTATE = "rotate"  # spend it, hand out a new pair in the same session
    END_SESSION = "end_session"  # reuse: a copy leaked, so end the whole session
    REJECT = "reject"


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token: only its hash is kept. `session_id` is the token family."""

    token_hash: str
    user_id: str
    session_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> RefreshState:
        # Revoked first: the session is over whatever else is true. Spent before expired: a spent
        # token presented again is reuse even after it expired, and the family must still die.
        if self.revoked_at is not None:
            return RefreshState.REVOKED
        if self.used_at is not None:
            return RefreshState.SPENT
        if now >= self.expires_at:
            return RefreshState.EXPIRED
        return RefreshState.USABLE


def refresh_verdict(state: RefreshState | None) -> RefreshVerdict:
    """What presenting a refresh token in `state` (None: unknown token) leads to."""
    if state is RefreshState.USABLE:
        return RefreshVerdict.ROTATE
    if state is RefreshState.SPENT:
        return RefreshVerdict.END_SESSION
    return RefreshVerdict.REJECT


def hash_refresh_token(raw: str) -> str:
    """sha256 is enough here: the token is 256 random bits, not a guessable password."""
    return hashlib.sha256(raw.encode()).hexdigest()


def new_refresh_token(
    user_id: str, session_id: str, now: datetime, ttl: timedelta
) -> tuple[str, RefreshToken]:
    """A fresh opaque token for the caller and the record to store (hash only)."""
    raw = secrets.token_urlsafe(32)
    token = RefreshToken(
        token_hash=hash_refresh_token(raw),
        user_id=user_id,
        session_id=session_id,
        created_at=now,
        expires_at=now + ttl,
    )
    return raw, token
