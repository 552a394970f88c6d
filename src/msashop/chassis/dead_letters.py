"""The admin API of one service's dead letters: list, show, replay and purge (`/admin/dlq`).

Every call goes through the service's bus and is limited to the service's own consumer group, so
a service can neither see nor replay another service's dead letters (the gateway maps
`/api/admin/dlq/<service>/...` to `<service>`'s `/admin/dlq/...`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from msashop.chassis.auth import AdminUser
from msashop.chassis.bus.port import DeadLetter, EventBus
from msashop.chassis.errors import NotFound
from msashop.chassis.responses import ADMIN

# How many dead letters one call looks at: show and replay find a letter among these, and
# "replay all" / "purge all" handle at most this many per call (run again for the rest).
SCAN_LIMIT = 10_000
MAX_LIST = 1_000


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "group": letter.group,
        "subject": letter.subject,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "failed_at": letter.failed_at.isoformat(),
        "envelope": letter.envelope.model_dump(mode="json"),
    }


class DeadLetterAdmin:
    """The dead letters of one consumer group, through the bus port."""

    def __init__(self, bus: EventBus, group: str) -> None:
        self.bus = bus
        self.group = group

    async def letters(self, limit: int = MAX_LIST) -> list[DeadLetter]:
        return await self.bus.dead_letters(self.group, limit=limit)

    async def get(self, dead_letter_id: str) -> DeadLetter:
        for letter in await self.bus.dead_letters(self.group, limit=SCAN_LIMIT):
            if letter.id == dead_letter_id:
                return letter
        raise NotFound(f"no dead letter {dead_letter_id!r} in {self.group}")

    async def replay(self, dead_letter_id: str) -> DeadLetter:
        letter = await self.get(dead_letter_id)  # checks the group before touching it
        if not await self.bus.replay_dead_letter(letter.id):
            raise NotFound(f"no dead letter {dead_letter_id!r} in {self.group}")
        return letter

    async def purge(self, dead_letter_id: str) -> None:
        letter = await self.get(dead_letter_id)
        if not await self.bus.purge_dead_letter(letter.id):
            raise NotFound(f"no dead letter {dead_letter_id!r} in {self.group}")

    async def replay_all(self) -> int:
        # A letter gone meanwhile (another admin, another instance) is simply not counted.
        letters = await self.bus.dead_letters(self.group, limit=SCAN_LIMIT)
        return sum([await self.bus.replay_dead_letter(letter.id) for letter in letters])

    async def purge_all(self) -> int:
        letters = await self.bus.dead_letters(self.group, limit=SCAN_LIMIT)
        return sum([await self.bus.purge_dead_letter(letter.id) for letter in letters])


def _admin(request: Request) -> DeadLetterAdmin:
    service = request.app.state.service
    return DeadLetterAdmin(service.bus, service.name)


Admin = Annotated[DeadLetterAdmin, Depends(_admin)]

router = APIRouter(prefix="/admin/dlq", tags=["admin"], responses=ADMIN)


@router.get("")
async def list_dead_letters(
    _: AdminUser, admin: Admin, limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100
) -> list[dict[str, Any]]:
    return [dead_letter_json(letter) for letter in await admin.letters(limit)]


@router.post("/replay")
async def replay_all(_: AdminUser, admin: Admin) -> dict[str, Any]:
    return {"group": admin.group, "replayed": await admin.replay_all()}


@router.delete("")
async def purge_all(_: AdminUser, admin: Admin) -> dict[str, Any]:
    return {"group": admin.group, "purged": await admin.purge_all()}


@router.get("/{dead_letter_id}")
async def show_dead_letter(dead_letter_id: str, _: AdminUser, admin: Admin) -> dict[str, Any]:
    return dead_letter_json(await admin.get(dead_letter_id))


@router.post("/{dead_letter_id}/replay")
async def replay_dead_letter(dead_letter_id: str, _: AdminUser, admin: Admin) -> dict[str, Any]:
    letter = await admin.replay(dead_letter_id)
    return {"group": admin.group, "replayed": 1, "id": letter.id}


@router.delete("/{dead_letter_id}", status_code=204)
async def purge_dead_letter(dead_letter_id: str, _: AdminUser, admin: Admin) -> Response:
    await admin.purge(dead_letter_id)
    return Response(status_code=204)
