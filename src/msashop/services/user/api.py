"""HTTP in: register, log in, refresh, log out, the caller's profile, and the public keys.

The gateway maps /api/auth and /api/users here and serves /.well-known/jwks.json from here.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator
from starlette.exceptions import HTTPException

from msashop.chassis.auth import CurrentUser, OptionalService, current_user
from msashop.chassis.dependencies import Uow, get_service
from msashop.chassis.errors import NotFound, Unauthorized, Unprocessable, error_body
from msashop.chassis.metrics import errors_total
from msashop.chassis.responses import errors
from msashop.services.user import cookies, handlers
from msashop.services.user.db import UserRepository
from msashop.services.user.domain import PASSWORD_MAX_LENGTH, User, check_password
from msashop.services.user.keyring import KeyRing
from msashop.services.user.throttle import LoginThrottle, LoginThrottled
from msashop.services.user.tokens import TokenIssuer, TokenPair

router = APIRouter(tags=["auth"])
# Services whose service token reads any user's summary (order composes an order with its buyer).
BATCH_CALLERS = frozenset({"order"})


def _issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def client_ip(request: Request) -> str:
    """The caller's IP: the gateway's X-Forwarded-For (the last hop it added), else the TCP peer.

    Only the gateway should reach this service; until service-to-service authentication is in
    place, a direct caller could name any IP here, which weakens only the per-IP throttle.
    """
    peer = request.client.host if request.client else "unknown"
    if not request.app.state.trust_forwarded_for:
        return peer
    forwarded = request.headers.get("x-forwarded-for", "").rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return peer


Issuer = Annotated[TokenIssuer, Depends(_issuer)]
Throttle = Annotated[LoginThrottle, Depends(_throttle)]
Keys = Annotated[KeyRing, Depends(_keyring)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
RefreshTokenText = Annotated[str, Field(min_length=1, max_length=200)]


class RegisterIn(BaseModel):
    # extra="forbid": a client cannot slip in `roles` or `id` (no mass assignment).
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=320)
    password: Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)]
    name: Name

    @model_validator(mode="after")
    def _policy(self) -> Self:
        check_password(self.password, self.email)  # WeakPassword is a ValueError: pydantic's 422
        return self


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Not EmailStr: a malformed email is simply unknown (401), and the seeded
    # admin@msashop.local uses a special-use domain EmailStr would refuse.
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Password
    # "cookie": the web UI's session, the tokens in HttpOnly cookies and not in the answer (cookies.py).
    session: cookies.SessionKind = "token"


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # None: the refresh cookie's (a cookie session); one of the two is needed.
    refresh_token: RefreshTokenText | None = None
    session: cookies.SessionKind = "token"


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # None: the refresh cookie's, or only the caller's own session ends.
    refresh_token: RefreshTokenText | None = None


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, roles=list(user.roles))


class UserSummary(BaseModel):
    id: str
    name: str
    email: str


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokenOut:
        return cls(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )


class SessionOut(BaseModel):
    """A cookie session's answer: the tokens are in the cookies, out of the page's reach."""

    session: Literal["cookie"] = "cookie"
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


def _answer(pair: TokenPair, cookie: bool, response: Response, issuer: TokenIssuer) -> TokenOut | SessionOut:
    if not cookie:
        return TokenOut.of(pair)
    cookies.set_session(response, pair, int(issuer.refresh_ttl.total_seconds()))
    return SessionOut(expires_in=pair.expires_in)


@router.post("/auth/register", response_model=UserOut, status_code=201, responses=errors(409))
async def register(body: RegisterIn, uow: Uow) -> UserOut:
    async with uow:
        user = await handlers.register(uow, email=body.email, password=body.password, name=body.name)
        await uow.commit()
    return UserOut.of(user)


@router.post(
    "/auth/login",
    response_model=TokenOut | SessionOut,
    responses={429: {"description": "too many failed logins for this account or address"}},
)
async def login(
    body: LoginIn, request: Request, response: Response, issuer: Issuer, throttle: Throttle
) -> TokenOut | SessionOut:
    new_uow = get_service(request).unit_of_work
    try:
        pair = await handlers.login(
            new_uow, issuer, throttle, email=body.email, password=body.password, ip=client_ip(request)
        )
    except LoginThrottled as exc:
        # One body whatever the reason (account or address, known email or not): CONTRACT's 429.
        raise HTTPException(
            429,
            "too many failed logins; try again later",
            headers={
                "Retry-After": str(exc.retry_after),
                "X-RateLimit-Limit": str(exc.limit.amount),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(exc.reset_at)),
            },
        ) from None
    return _answer(pair, body.session == "cookie", response, issuer)


@router.post("/auth/refresh", response_model=TokenOut | SessionOut)
async def refresh(
    request: Request,
    response: Response,
    uow: Uow,
    issuer: Issuer,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> TokenOut | SessionOut | Response:
    """The body's refresh token, else the refresh cookie's (then the answer renews the cookies)."""
    body = body or RefreshIn()
    from_cookie = body.refresh_token is None
    raw = body.refresh_token or cookies.refresh_cookie(request)
    if raw is None:
        raise Unprocessable("refresh_token is required, in the body or the session cookie")
    try:
        async with uow:
            pair = await handlers.refresh(uow, issuer, raw)
    except Unauthorized as exc:
        if not from_cookie:
            raise
        # The cookie session is over: the browser drops its cookies rather than sending them on.
        errors_total.labels(type="api", code=exc.code).inc()
        failed = JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code)
        cookies.clear_session(failed)
        return failed
    return _answer(pair, from_cookie or body.session == "cookie", response, issuer)


@router.post("/auth/logout", status_code=204)
async def logout(
    request: Request,
    caller: CurrentUser,
    uow: Uow,
    issuer: Issuer,
    body: Annotated[LogoutIn | None, Body()] = None,
) -> Response:
    """Ends the caller's session and the refresh token's (the body's, else the cookie's); the
    answer clears the session cookies (harmless for a client that has none)."""
    raw = (body.refresh_token if body else None) or cookies.refresh_cookie(request) or ""
    async with uow:
        await handlers.logout(uow, issuer, caller, raw)
    answer = Response(status_code=204)
    cookies.clear_session(answer)
    return answer


@router.get("/users/me", response_model=UserOut, responses=errors(404))
async def me(caller: CurrentUser, uow: Uow) -> UserOut:
    async with uow:
        user = await UserRepository(uow.session).get(caller.user_id)
    if user is None:
        raise NotFound("user not found")
    return UserOut.of(user)


@router.get("/users/batch", response_model=list[UserSummary])
async def get_users_by_ids(
    request: Request,
    service: OptionalService,
    uow: Uow,
    ids: Annotated[str, Query(max_length=4000, description="comma-separated ids")],
) -> list[UserSummary]:
    """Batch get by ids for API composition (order + user details in one call, no N+1).

    Meant for the services that compose answers (BATCH_CALLERS, by their service token): they see
    everyone asked for, having checked the caller may see the order. Anyone else needs a user: a
    customer sees only themselves among the ids (another user's name and email are theirs), an
    admin everyone asked for."""
    if service is not None and service.name in BATCH_CALLERS:
        wanted = [i for i in ids.split(",") if i][:100]
    else:
        caller = await current_user(request)
        wanted = [i for i in ids.split(",") if i and (caller.is_admin or i == caller.user_id)][:100]
    async with uow:
        found = await UserRepository(uow.session).get_many(wanted)
    return [UserSummary(id=u.id, name=u.name, email=u.email) for u in found]


@router.get("/.well-known/jwks.json")
async def jwks(keyring: Keys) -> dict[str, Any]:
    """Every key whose tokens may still be valid: the current one and the previous ones."""
    return await keyring.fetch_jwks(max_age=1.0)  # anyone may ask: at most one read a second
