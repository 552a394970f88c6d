"""Admin API for the signing keys: list, rotate, retire (gateway: /api/admin/keys/user/...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from msashop.chassis.auth import AdminUser
from msashop.chassis.dependencies import get_service
from msashop.chassis.responses import ADMIN
from msashop.services.user.keyring import KeyRing
from msashop.services.user.keys import KeyRecord

router = APIRouter(prefix="/admin/keys", tags=["admin"], responses=ADMIN)


def _keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


Keys = Annotated[KeyRing, Depends(_keyring)]
Kid = Annotated[str, Path(min_length=1, max_length=128)]


class KeyOut(BaseModel):
    kid: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    superseded_at: datetime | None
    retired_at: datetime | None
    published_until: datetime | None  # a previous key: when it leaves the JWKS

    @classmethod
    def of(cls, record: KeyRecord, keyring: KeyRing) -> KeyOut:
        return cls(
            kid=record.kid,
            state=keyring.state(record),
            created_at=record.created_at,
            activated_at=record.activated_at,
            superseded_at=record.superseded_at,
            retired_at=record.retired_at,
            published_until=record.published_until(keyring.grace),
        )


class RotationOut(BaseModel):
    current: str
    keys: list[KeyOut]


def _listing(keyring: KeyRing) -> list[KeyOut]:
    return [KeyOut.of(r, keyring) for r in reversed(keyring.records())]


def _sync_verifier(request: Request, keyring: KeyRing) -> None:
    # This service verifies with the ring itself: the change holds here at once.
    get_service(request).verifier.set_jwks(keyring.jwks())


@router.get("", response_model=list[KeyOut])
async def list_keys(_: AdminUser, keyring: Keys) -> list[KeyOut]:
    await keyring.reload()
    return _listing(keyring)


@router.post("/rotate", response_model=RotationOut)
async def rotate(_: AdminUser, keyring: Keys, request: Request) -> RotationOut:
    """A new current key signs every new token; the old one verifies until its tokens expire."""
    record = await keyring.rotate()
    _sync_verifier(request, keyring)
    return RotationOut(current=record.kid, keys=_listing(keyring))


@router.post("/{kid}/retire", response_model=KeyOut)
async def retire(kid: Kid, _: AdminUser, keyring: Keys, request: Request) -> KeyOut:
    """Stop a previous key verifying now (it leaked): every token it signed fails at once."""
    record = await keyring.retire(kid)
    _sync_verifier(request, keyring)
    return KeyOut.of(record, keyring)
