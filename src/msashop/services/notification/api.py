"""HTTP in: the caller's notifications (the gateway maps /api/notifications to /notifications)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from msashop.chassis.auth import CurrentUser
from msashop.chassis.dependencies import Uow
from msashop.services.notification.db import NotificationRepository
from msashop.services.notification.domain import Notification

router = APIRouter(prefix="/notifications", tags=["notifications"])

# The newest this many: a bounded answer however long a user's history grows.
LIMIT = 100


class NotificationOut(BaseModel):
    id: str
    type: str
    order_id: str | None
    message: str
    created_at: datetime

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id, type=n.type.value, order_id=n.order_id, message=n.message, created_at=n.created_at
        )


@router.get("", response_model=list[NotificationOut])
async def list_notifications(uow: Uow, user: CurrentUser) -> list[NotificationOut]:
    """The caller's own notifications, newest first; an admin also sees every admin alert."""
    async with uow:
        found = await NotificationRepository(uow.session).for_user(
            user.user_id, is_admin=user.is_admin, limit=LIMIT
        )
    return [NotificationOut.of(n) for n in found]
