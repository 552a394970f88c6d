"""The users (who to write to) and notifications tables, and their repository.

`audience` says who sees a notification: `user` (its user_id) or `admins` (every admin).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from msashop.services.notification.domain import (
    Audience,
    DeliveredVia,
    Notification,
    NotificationType,
    Recipient,
)

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_via", sa.String(16), nullable=False),
    sa.Column("audience", sa.String(8), nullable=False, server_default=Audience.USER.value),
    sa.Column("step", sa.String(64), nullable=True),
    sa.CheckConstraint("delivered_via IN ('email', 'recorded')", name="ck_notification_delivered_via"),
    # One user notification of a type per order, one order-less one (welcome) per user, and
    # one admin alert per order and saga step.
    sa.Index(
        "uq_notifications_type_order",
        "type",
        "order_id",
        unique=True,
        sqlite_where=sa.text("order_id IS NOT NULL AND audience = 'user'"),
        postgresql_where=sa.text("order_id IS NOT NULL AND audience = 'user'"),
    ),
    sa.Index(
        "uq_notifications_admins_order_step",
        "order_id",
        "step",
        unique=True,
        sqlite_where=sa.text("audience = 'admins'"),
        postgresql_where=sa.text("audience = 'admins'"),
    ),
    sa.Index(
        "uq_notifications_user_type_no_order",
        "user_id",
        "type",
        unique=True,
        sqlite_where=sa.text("order_id IS NULL"),
        postgresql_where=sa.text("order_id IS NULL"),
    ),
    sa.Index("ix_notifications_user_created", "user_id", "created_at"),
)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp here was written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_notification(row: sa.Row[Any]) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        type=NotificationType(row.type),
        order_id=row.order_id,
        message=row.message,
        created_at=_utc(row.created_at),
        delivered_via=DeliveredVia(row.delivered_via),
        audience=Audience(row.audience),
        step=row.step,
    )


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_recipient(self, user_id: str) -> Recipient | None:
        row = (await self.session.execute(sa.select(users).where(users.c.id == user_id))).first()
        return Recipient(user_id=row.id, email=row.email, name=row.name) if row else None

    async def save_recipient(self, recipient: Recipient) -> None:
        values = {"email": recipient.email, "name": recipient.name, "updated_at": datetime.now(UTC)}
        if await self.get_recipient(recipient.user_id) is None:
            await self.session.execute(sa.insert(users).values(id=recipient.user_id, **values))
        else:
            await self.session.execute(
                sa.update(users).where(users.c.id == recipient.user_id).values(**values)
            )

    async def find(
        self, *, user_id: str, type: NotificationType, order_id: str | None
    ) -> Notification | None:
        """The user notification the unique indexes allow once: per order, or per user without one."""
        where = [notifications.c.audience == Audience.USER.value, notifications.c.type == type.value]
        if order_id is None:
            where += [notifications.c.user_id == user_id, notifications.c.order_id.is_(None)]
        else:
            where.append(notifications.c.order_id == order_id)
        row = (await self.session.execute(sa.select(notifications).where(*where))).first()
        return _to_notification(row) if row else None

    async def find_admin_alert(self, *, order_id: str, step: str) -> Notification | None:
        row = (
            await self.session.execute(
                sa.select(notifications).where(
                    notifications.c.audience == Audience.ADMINS.value,
                    notifications.c.order_id == order_id,
                    notifications.c.step == step,
                )
            )
        ).first()
        return _to_notification(row) if row else None

    async def add(self, n: Notification) -> None:
        await self.session.execute(
            sa.insert(notifications).values(
                id=n.id,
                user_id=n.user_id,
                type=n.type.value,
                order_id=n.order_id,
                message=n.message,
                created_at=n.created_at,
                delivered_via=n.delivered_via.value,
                audience=n.audience.value,
                step=n.step,
            )
        )

    async def for_user(self, user_id: str, *, is_admin: bool, limit: int) -> list[Notification]:
        """The user's own notifications, and for an admin every admin alert too."""
        seen = sa.and_(notifications.c.audience == Audience.USER.value, notifications.c.user_id == user_id)
        if is_admin:
            seen = sa.or_(seen, notifications.c.audience == Audience.ADMINS.value)
        rows = await self.session.execute(
            sa.select(notifications)
            .where(seen)
            .order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
            .limit(limit)
        )
        return [_to_notification(r) for r in rows]
