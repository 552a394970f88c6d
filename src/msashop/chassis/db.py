"""The service's own database: an async SQLAlchemy engine, sessions, and Alembic on start.

SQLite (the embedded default) runs in WAL mode and takes the write lock at BEGIN
(`BEGIN IMMEDIATE`), so concurrent transactions wait for each other instead of failing
with "database is locked" half way. `read()` is the one exception: a short read that begins
DEFERRED, so it neither waits for nor holds the write lock (WAL readers see the last commit).
PostgreSQL runs the same code through asyncpg.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# Marks the connections of `Database.read()`: their SQLite transaction begins DEFERRED.
_READ_ONLY = "msashop_read_only"


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _serialise_sqlite_writes(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer. Writers of this process queue here, in order, instead of in
        # SQLite's busy handler, whose sleeps (up to 100 ms each) would idle a contended service.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        # Same pool, same connections: only how their transaction begins differs.
        self._readers = async_sessionmaker(self.engine.execution_options(**{_READ_ONLY: True}))

    def session(self) -> AsyncSession:
        return self.sessions()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold this process's turn to write (SQLite); a no-op where the server arbitrates."""
        if self.write_lock is None:
            yield
            return
        async with self.write_lock:
            yield

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for a short read outside the write lock; it must not write (rolled back)."""
        async with self._readers() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self, migrations: Path) -> None:
        """Apply the service's Alembic migrations up to head (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(migrations))
        config.attributes["database_url"] = self.url
        await asyncio.to_thread(command.upgrade, config, "head")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _serialise_sqlite_writes(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
