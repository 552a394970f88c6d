"""Migration 0002 (audience, step) on a database that already holds notifications."""

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from msashop.services.notification import main

MIGRATIONS = Path(main.__file__).parent / "migrations"


def _alembic(db: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = f"sqlite+aiosqlite:///{db}"
    return config


def _insert(conn: sqlite3.Connection, id_: str, type_: str, order_id: str | None, *extra: str) -> None:
    columns = "id, user_id, type, order_id, message, created_at, delivered_via" + "".join(
        f", {c}" for c in ("audience", "step")[: len(extra)]
    )
    values = [id_, "u1", type_, order_id, "m", "2026-01-01 00:00:00", "recorded", *extra]
    conn.execute(f"INSERT INTO notifications ({columns}) VALUES ({', '.join('?' * len(values))})", values)
    conn.commit()


def test_existing_notifications_are_for_their_user_and_stay_unique(tmp_path: Path) -> None:
    db = tmp_path / "notification.sqlite"
    command.upgrade(_alembic(db), "0001")
    with sqlite3.connect(db) as conn:
        _insert(conn, "n1", "order_confirmed", "o1")
    command.upgrade(_alembic(db), "head")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT audience, step FROM notifications").fetchall() == [("user", None)]
        with pytest.raises(sqlite3.IntegrityError):
            _insert(conn, "n2", "order_confirmed", "o1")
        # Admin alerts are unique per order and step, not per order.
        _insert(conn, "a1", "admin_alert", "o1", "admins", "refundPayment")
        _insert(conn, "a2", "admin_alert", "o1", "admins", "releaseItems")
    command.downgrade(_alembic(db), "0001")  # admin alerts go; users' notifications stay
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id FROM notifications").fetchall() == [("n1",)]
        indexes = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'uq_%'")
        assert sorted(sql for (sql,) in indexes) == [
            "CREATE UNIQUE INDEX uq_notifications_type_order ON notifications (type, order_id) "
            "WHERE order_id IS NOT NULL",
            "CREATE UNIQUE INDEX uq_notifications_user_type_no_order ON notifications (user_id, type) "
            "WHERE order_id IS NULL",
        ]
