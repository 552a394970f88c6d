"""Admin API for a user's roles (RBAC): PUT /users/{id}/roles (gateway: /api/users/{id}/roles).

The roles are the platform's: customer, premium, admin (chassis/auth.py). They are carried in the
access token's `roles` claim, which every service checks itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from msashop.chassis.auth import ROLES, AdminUser
from msashop.chassis.dependencies import Uow
from msashop.chassis.responses import ADMIN, errors
from msashop.services.user import handlers
from msashop.services.user.api import UserOut
from msashop.services.user.tokens import TokenIssuer

router = APIRouter(tags=["admin"])

UserId = Annotated[str, Path(min_length=1, max_length=36)]


class RolesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[str] = Field(min_length=1, max_length=len(ROLES), description="customer, premium, admin")

    @field_validator("roles")
    @classmethod
    def _known(cls, roles: list[str]) -> list[str]:
        unknown = sorted(set(roles) - ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(ROLES))}")
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed more than once")
        return roles


@router.put("/users/{user_id}/roles", response_model=UserOut, responses={**ADMIN, **errors(404, 409)})
async def set_roles(user_id: UserId, body: RolesIn, admin: AdminUser, uow: Uow, request: Request) -> UserOut:
    """Give a user exactly these roles. Taking one away ends the user's sessions at once; an
    added one shows in their next token (refresh or login)."""
    issuer: TokenIssuer = request.app.state.token_issuer
    # Stored in a fixed order, so the token's `roles` claim does not depend on how they were sent.
    roles = tuple(sorted(body.roles, key=["customer", "premium", "admin"].index))
    async with uow:
        user = await handlers.set_roles(uow, issuer, admin, user_id, roles)
    return UserOut.of(user)
