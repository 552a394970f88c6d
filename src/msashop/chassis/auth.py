"""Access-token verification every service does itself (zero trust), and the FastAPI dependencies.

Tokens are EdDSA-signed by the user service, which publishes its public keys as JWKS (every key
still valid: the current one and, after a rotation, the previous ones until their tokens expire).
A token is accepted only if all hold: `alg` EdDSA and a `kid` in the set; a good signature; `iss`,
`aud` (exactly ours), `exp`, `nbf`, `iat` within LEEWAY_SECONDS; `typ` "access" (a refresh token or
any other token type is never an access token); and none of its `jti`, `sid` (session) or `kid`
(retired key) revoked in the shared store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from msashop.chassis.cache_metrics import jwks_cache
from msashop.chassis.errors import Forbidden, Unauthorized
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.tracing import note_user

ISSUER = "msashop-auth"
AUDIENCE = "msashop"
# Asymmetric only. A token's own `alg` header is never trusted to pick the algorithm: "none" and
# every HMAC algorithm (HS256 keyed with our public key is the classic confusion attack) fail here.
ALGORITHMS = ["EdDSA"]
# Clock skew between the signer and a verifier, applied to exp, nbf and iat.
LEEWAY_SECONDS = 30
ACCESS = "access"  # the `typ` claim of an access token; nothing else is accepted as one
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "sub", "jti", "iss", "aud"]
MAX_KID_LENGTH = 128


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: tuple[str, ...] = ()
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _public_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    """{kid: key} for the Ed25519 signing keys of a JWKS; anything else in it is ignored.

    A symmetric ("oct") or foreign key in the set must not become something a token can name.
    """
    keys: dict[str, Any] = {}
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA" or not jwk.get("kid"):
            continue
        try:
            keys[str(jwk["kid"])] = jwt.PyJWK.from_dict(jwk).key
        except jwt.PyJWTError:
            continue
    return keys


class TokenVerifier:
    """Checks access tokens against the user service's JWKS, cached and refetched when needed.

    The set is refetched every `refresh_after` seconds, and for a key id it does not know (the
    user service rotated its key) at most once per `min_refetch_seconds`, so a stream of tokens with
    made-up key ids cannot turn into a stream of JWKS requests. A token that meets a fetch made
    just before it waits for the next one rather than failing: right after a rotation, the first
    tokens of the new key must not be refused because a fetch happened a moment earlier.
    """

    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[dict[str, Any]]] | None,
        store: RevocationStore,
        *,
        refresh_after: float = 300,
        min_refetch_seconds: float = 1.0,
    ) -> None:
        self.fetch_jwks = fetch_jwks
        self.store = store
        self.refresh_after = refresh_after
        self.min_refetch_seconds = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0  # when the set in hand was fetched (monotonic)
        self._attempted_at = -float("inf")  # when the last fetch started, successful or not
        self._lock = asyncio.Lock()

    def set_jwks(self, jwks: dict[str, Any]) -> None:
        self._keys = _public_keys(jwks)
        self._fetched_at = time.monotonic()

    def _stale(self) -> bool:
        now = time.monotonic()
        return (
            now - self._fetched_at > self.refresh_after
            and now - self._attempted_at >= self.min_refetch_seconds
        )

    async def _key(self, kid: str) -> Any:
        jwks_cache.record(hit=kid in self._keys and not self._stale())
        if self.fetch_jwks is not None and (kid not in self._keys or self._stale()):
            arrived = time.monotonic()
            async with self._lock:
                if kid not in self._keys and self._attempted_at < arrived:
                    # No fetch since this token arrived: the next one is for it (the ones queued
                    # behind take that fetch's answer instead of asking again).
                    await asyncio.sleep(self._attempted_at + self.min_refetch_seconds - time.monotonic())
                    await self._fetch()
                elif kid in self._keys and self._stale():
                    await self._fetch()
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("token signed by an unknown key", code="invalid_token") from None

    async def _fetch(self) -> None:
        assert self.fetch_jwks
        self._attempted_at = time.monotonic()
        try:
            self.set_jwks(await self.fetch_jwks())
        except Exception:  # noqa: BLE001 - the user service may be restarting: keep the keys in hand
            return

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("malformed token", code="invalid_token") from None
        kid = header.get("kid")
        well_formed_kid = isinstance(kid, str) and 0 < len(kid) <= MAX_KID_LENGTH
        if header.get("alg") not in ALGORITHMS or not well_formed_kid:
            raise Unauthorized("token algorithm or key id not accepted", code="invalid_token")
        key = await self._key(str(kid))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token", code="invalid_token") from None
        if claims.get("typ") != ACCESS:
            raise Unauthorized("not an access token", code="invalid_token")
        revocable = [f"jti:{claims['jti']}", f"sid:{claims.get('sid', '')}", f"kid:{kid}"]
        if await self.store.any_revoked(revocable):
            raise Unauthorized("token revoked", code="token_revoked")
        roles = claims.get("roles", ())
        if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("invalid token", code="invalid_token")
        return Principal(
            user_id=str(claims["sub"]),
            roles=tuple(roles),
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
    principal = await verifier.verify(token)
    note_user(principal.user_id)  # on the request's span and log lines
    return principal


async def current_admin(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise Forbidden("admin role required")
    return user


async def optional_user(request: Request) -> Principal | None:
    return await current_user(request) if bearer_token(request) else None


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(current_admin)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
