"""PostgreSQL: create each service's database from the `[database] url` template when missing."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit


class DatabaseSetupFailed(Exception):
    pass


def server_dsn(url: str) -> tuple[str, str]:
    """asyncpg DSN of the server's maintenance database "postgres", and the database to create."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    name = parts.path.lstrip("/")
    if not name:
        raise DatabaseSetupFailed(f"{url} names no database")
    return urlunsplit(parts._replace(path="/postgres")), name


async def create_missing_databases(urls: Iterable[str]) -> list[str]:
    """Create the databases that do not exist yet; returns the names created."""
    import asyncpg  # only needed with PostgreSQL

    created: list[str] = []
    for url in urls:
        dsn, name = server_dsn(url)
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseSetupFailed(f"cannot connect to PostgreSQL for {name}: {exc}") from None
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                # Identifiers cannot be bound parameters; quote it the PostgreSQL way.
                await conn.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
                created.append(name)
        except asyncpg.PostgresError as exc:
            raise DatabaseSetupFailed(f"cannot create database {name}: {exc}") from None
        finally:
            await conn.close()
    return created
