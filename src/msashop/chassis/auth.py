"""Access-token verification every service does itself (zero trust), and the FastAPI dependencies.

Tokens are EdDSA-signed by the user service, which publishes its public keys as JWKS (every key
still valid: the current one and, after a rotation, the previous ones until their tokens expire).
A token is accepted only if all hold: `alg` EdDSA and a `kid` in the set; a good signature; `iss`,
`aud` (exactly ours), `exp`, `nbf`, `iat` within LEEWAY_SECONDS; `typ` "access" (a refresh token or
any other token type is never an access token); and none of its `jti`, `sid` (session) or `kid`
(retired key) revoked in the shared store.

Service tokens (client credentials from the user service, `typ` "service", `aud` the called
service's name, see service_tokens.py) are checked the same way against the same keys. A user
token is never a service token and the other way round: `typ` and `aud` both differ.

Who a request is for: the user of a valid bearer token, or, only alongside a valid service token
(`X-Service-Token`), the X-User-Id and X-User-Roles another service vouches for. Those headers
alone count for nothing: anyone can write them.
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
from msashop.chassis.verified_tokens import VerifiedTokens

ISSUER = "msashop-auth"
AUDIENCE = "msashop"
# Asymmetric only. A token's own `alg` header is never trusted to pick the algorithm: "none" and
# every HMAC algorithm (HS256 keyed with our public key is the classic confusion attack) fail here.
ALGORITHMS = ["EdDSA"]
# Clock skew between the signer and a verifier, applied to exp, nbf and iat.
LEEWAY_SECONDS = 30
ACCESS = "access"  # the `typ` claim of an access token; nothing else is accepted as one
SERVICE = "service"  # the `typ` claim of a service token (client credentials)
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "sub", "jti", "iss", "aud"]
MAX_KID_LENGTH = 128
# The header a calling service sends its token in; Authorization keeps carrying the user's own.
SERVICE_TOKEN_HEADER = "X-Service-Token"
# Platform roles (RBAC): every account is a customer, premium ones get more, admins run the shop.
CUSTOMER, PREMIUM, ADMIN = "customer", "premium", "admin"
ROLES = frozenset({CUSTOMER, PREMIUM, ADMIN})
MAX_USER_ID_LENGTH = 128


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: tuple[str, ...] = ()
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False)
    # The service that vouched for this identity (X-User-Id with its service token); "" when the
    # user's own token said it.
    via: str = ""

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def has_any(self, roles: frozenset[str]) -> bool:
        return not roles.isdisjoint(self.roles)


@dataclass(frozen=True)
class ServiceCaller:
    """The service a valid service token names (`sub`, its client id)."""

    name: str
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


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
        service: str = "",
    ) -> None:
        self.fetch_jwks = fetch_jwks
        self.store = store
        self.service = service  # the audience of the service tokens this process accepts
        self.refresh_after = refresh_after
        self.min_refetch_seconds = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0  # when the set in hand was fetched (monotonic)
        self._attempted_at = -float("inf")  # when the last fetch started, successful or not
        self._lock = asyncio.Lock()
        self._verified = VerifiedTokens(LEEWAY_SECONDS)

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

    async def _decode(self, token: str, audience: str, typ: str) -> tuple[dict[str, Any], str]:
        """Signature and claim rules: the claims and the key id, or Unauthorized."""
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
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token", code="invalid_token") from None
        if claims.get("typ") != typ:
            raise Unauthorized(f"not {'an' if typ == ACCESS else 'a'} {typ} token", code="invalid_token")
        return claims, str(kid)

    async def _claims(self, token: str, audience: str, typ: str) -> dict[str, Any]:
        """The claims of a token signed by one of our keys for `audience`, of type `typ`, not revoked."""
        known = self._verified.get(token, audience, typ)
        if known is not None and known.kid in self._keys and not self._stale():
            jwks_cache.record(hit=True)  # its key, in the set in hand, is what a decode would use
            claims, kid = known.claims, known.kid
        else:
            claims, kid = await self._decode(token, audience, typ)
            self._verified.put(token, audience, typ, claims, kid)
        revocable = [f"jti:{claims['jti']}", f"sid:{claims.get('sid', '')}", f"kid:{kid}"]
        if await self.store.any_revoked(revocable):
            raise Unauthorized("token revoked", code="token_revoked")
        return claims

    async def verify(self, token: str) -> Principal:
        """A user's access token (`aud` "msashop", `typ` "access")."""
        claims = await self._claims(token, AUDIENCE, ACCESS)
        roles = claims.get("roles", ())
        if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("invalid token", code="invalid_token")
        return Principal(
            user_id=str(claims["sub"]),
            roles=tuple(roles),
            email=str(claims.get("email", "")),
            claims=claims,
        )

    async def verify_service(self, token: str) -> ServiceCaller:
        """A service token addressed to this service (`aud` == `service`); any other is refused."""
        if not self.service:
            raise Unauthorized("this process accepts no service tokens", code="invalid_service_token")
        try:
            claims = await self._claims(token, self.service, SERVICE)
        except Unauthorized as exc:
            message = f"service token refused: {exc.message}"
            raise Unauthorized(message, code="invalid_service_token") from None
        return ServiceCaller(name=str(claims["sub"]), claims=claims)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


async def calling_service(request: Request) -> ServiceCaller | None:
    """The service that called, by its valid service token; None without one; 401 for a bad one.

    Checked once per request (the answer is kept on the request for the next dependency).
    """
    if hasattr(request.state, "service_caller"):
        found: ServiceCaller | None = request.state.service_caller
        return found
    token = request.headers.get(SERVICE_TOKEN_HEADER)
    caller = None
    if token is not None:
        verifier: TokenVerifier = request.app.state.verifier
        caller = await verifier.verify_service(token.strip())
    request.state.service_caller = caller
    return caller


def _vouched_user(request: Request, caller: ServiceCaller) -> Principal | None:
    user_id = request.headers.get("x-user-id", "").strip()
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        return None
    listed = (r.strip() for r in request.headers.get("x-user-roles", "").split(","))
    return Principal(user_id=user_id, roles=tuple(r for r in listed if r), via=caller.name)


async def current_user(request: Request) -> Principal:
    """The user's own bearer token first; else X-User-Id/X-User-Roles, only with a service token."""
    token = bearer_token(request)
    if token is not None:
        verifier: TokenVerifier = request.app.state.verifier
        principal = await verifier.verify(token)
    else:
        caller = await calling_service(request)
        vouched = _vouched_user(request, caller) if caller is not None else None
        if vouched is None:
            raise Unauthorized("authentication required")
        principal = vouched
    note_user(principal.user_id)  # on the request's span and log lines
    return principal


async def current_admin(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise Forbidden("admin role required")
    return user


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the current user, who must hold one of `roles` (401 without a user, else 403)."""
    if not roles or not ROLES.issuperset(roles):
        raise ValueError(f"require_roles takes known roles ({', '.join(sorted(ROLES))}), got {roles}")
    wanted = frozenset(roles)

    async def dependency(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if not user.has_any(wanted):
            raise Forbidden(f"one of these roles is required: {', '.join(sorted(wanted))}")
        return user

    return dependency


def require_service(*callers: str) -> Callable[..., Awaitable[ServiceCaller]]:
    """A dependency for endpoints meant for other services: a valid service token (401 without
    one), from one of `callers` when given (403 from any other)."""

    async def dependency(request: Request) -> ServiceCaller:
        caller = await calling_service(request)
        if caller is None:
            raise Unauthorized("a service token is required", code="service_token_required")
        if callers and caller.name not in callers:
            raise Forbidden(f"{caller.name} may not call this endpoint")
        return caller

    return dependency


async def optional_user(request: Request) -> Principal | None:
    """The current user, or None when the request names none (a bad token is still a 401)."""
    vouched = request.headers.get("x-user-id") and request.headers.get(SERVICE_TOKEN_HEADER) is not None
    return await current_user(request) if bearer_token(request) or vouched else None


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(current_admin)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
OptionalService = Annotated[ServiceCaller | None, Depends(calling_service)]
