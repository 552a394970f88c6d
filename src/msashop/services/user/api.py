"""HTTP in: register, log in, refresh, log out, the caller's profile, and the public keys.

The gateway maps /api/auth and /api/users here and serves /.well-known/jwks.json from here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from msashop.chassis.auth import CurrentUser
from msashop.chassis.dependencies import Uow, get_service
from msashop.chassis.errors import NotFound
from msashop.services.user import handlers
from msashop.services.user.db import UserRepository
from msashop.services.user.domain import PASSWORD_MAX_LENGTH, User, check_password
from msashop.services.user.handlers import TokenIssuer, TokenPair

router = APIRouter(tags=["auth"])


def _issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer


Issuer = Annotated[TokenIssuer, Depends(_issuer)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
RefreshTokenText = Annotated[str, Field(min_length=1, max_length=200)]


class RegisterIn(BaseModel):
    # extra="forbid": a client cannot slip in `roles` or `id` (no mass assignment).
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=320)
    password: Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)]
    name: Name

    @field_validator("password")
    @classmethod
    def _policy(cls, password: str) -> str:
        check_password(password)  # WeakPassword is a ValueError: pydantic reports it as a 422
        return password


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Not EmailStr: a malformed email is simply unknown (401), and the seeded
    # admin@msashop.local uses a special-use domain EmailStr would refuse.
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Password


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: RefreshTokenText


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


@router.post("/auth/register", response_model=UserOut, status_code=201)
async def register(body: RegisterIn, uow: Uow) -> UserOut:
    async with uow:
        user = await handlers.register(uow, email=body.email, password=body.password, name=body.name)
        await uow.commit()
    return UserOut.of(user)


@router.post("/auth/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, issuer: Issuer) -> TokenOut:
    new_uow = get_service(request).unit_of_work
    return TokenOut.of(await handlers.login(new_uow, issuer, email=body.email, password=body.password))


@router.post("/auth/refresh", response_model=TokenOut)
async def refresh(body: RefreshIn, uow: Uow, issuer: Issuer) -> TokenOut:
    async with uow:
        return TokenOut.of(await handlers.refresh(uow, issuer, body.refresh_token))


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshIn, caller: CurrentUser, uow: Uow, issuer: Issuer) -> Response:
    async with uow:
        await handlers.logout(uow, issuer, caller, body.refresh_token)
    return Response(status_code=204)


@router.get("/users/me", response_model=UserOut)
async def me(caller: CurrentUser, uow: Uow) -> UserOut:
    async with uow:
        user = await UserRepository(uow.session).get(caller.user_id)
    if user is None:
        raise NotFound("user not found")
    return UserOut.of(user)


@router.get("/users/batch", response_model=list[UserSummary])
async def get_users_by_ids(
    _: CurrentUser, uow: Uow, ids: Annotated[str, Query(max_length=4000, description="comma-separated ids")]
) -> list[UserSummary]:
    """Batch get by ids for API composition (order + user details in one call, no N+1)."""
    wanted = [i for i in ids.split(",") if i][:100]
    async with uow:
        found = await UserRepository(uow.session).get_many(wanted)
    return [UserSummary(id=u.id, name=u.name, email=u.email) for u in found]


@router.get("/.well-known/jwks.json")
async def jwks(issuer: Issuer) -> dict[str, list[dict[str, str]]]:
    return {"keys": [issuer.key.jwk()]}
