"""Access-token verification every service does itself (zero trust), and the FastAPI dependencies.

Tokens are EdDSA-signed by the user service, which publishes its public keys as JWKS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from msashop.chassis.errors import Forbidden, Unauthorized
from msashop.chassis.revocation import RevocationStore

ISSUER = "msashop-auth"
AUDIENCE = "msashop"
ALGORITHMS = ["EdDSA"]
LEEWAY_SECONDS = 10


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: tuple[str, ...] = ()
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class TokenVerifier:
    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[dict[str, Any]]] | None,
        store: RevocationStore,
        *,
        refresh_after: float = 300,
    ) -> None:
        self.fetch_jwks = fetch_jwks
        self.store = store
        self.refresh_after = refresh_after
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def set_jwks(self, jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: jwt.PyJWK.from_dict(k).key for k in jwks.get("keys", [])}
        self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched_at > self.refresh_after
        if (kid not in self._keys or stale) and self.fetch_jwks:
            async with self._lock:
                if kid not in self._keys or time.monotonic() - self._fetched_at > self.refresh_after:
                    await self._fetch()
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("token signed by an unknown key", code="invalid_token") from None

    async def _fetch(self) -> None:
        assert self.fetch_jwks
        try:
            self.set_jwks(await self.fetch_jwks())
        except Exception:  # noqa: BLE001 - the user service may be restarting
            self._fetched_at = time.monotonic() - self.refresh_after + 2  # retry soon, not every call

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("malformed token", code="invalid_token") from None
        if header.get("alg") not in ALGORITHMS or not header.get("kid"):
            raise Unauthorized("token algorithm or key id not accepted", code="invalid_token")
        key = await self._key(str(header["kid"]))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token", code="invalid_token") from None
        if claims.get("typ") != "access":
            raise Unauthorized("not an access token", code="invalid_token")
        if await self.store.any_revoked([f"jti:{claims['jti']}", f"sid:{claims.get('sid', '')}"]):
            raise Unauthorized("token revoked", code="token_revoked")
        return Principal(
            user_id=str(claims["sub"]),
            roles=tuple(claims.get("roles", ())),
            email=str(claims.get("email", "")),
            claims=claims,
        )


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


async def current_user(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("authentication required")
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token)


async def current_admin(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise Forbidden("admin role required")
    return user


async def optional_user(request: Request) -> Principal | None:
    return await current_user(request) if bearer_token(request) else None


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(current_admin)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
