"""Creating each service's PostgreSQL database from the config template (real server)."""

from __future__ import annotations

import uuid

import pytest

from msashop.supervisor.databases import DatabaseSetupFailed, create_missing_databases
from tests.conftest import POSTGRES_ADMIN_DSN, unavailable

pytestmark = pytest.mark.postgres


async def test_missing_databases_are_created_once() -> None:
    import asyncpg

    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
        return
    prefix = f"msashop_sv_{uuid.uuid4().hex[:8]}"
    template = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefix}_{{service}}"
    urls = [template.replace("{service}", name) for name in ("user", "order")]
    try:
        assert await create_missing_databases(urls) == [f"{prefix}_user", f"{prefix}_order"]
        assert await create_missing_databases(urls) == []  # a second run finds them
        rows = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{prefix}_%")
        assert sorted(r["datname"] for r in rows) == [f"{prefix}_order", f"{prefix}_user"]
    finally:
        for url in urls:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}"')
        await admin.close()


async def test_an_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(DatabaseSetupFailed, match="cannot connect to PostgreSQL"):
        await create_missing_databases(["postgresql+asyncpg://postgres@127.0.0.1:1/msashop_user"])
