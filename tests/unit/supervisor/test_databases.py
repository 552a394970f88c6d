import pytest

from msashop.supervisor.databases import DatabaseSetupFailed, server_dsn


def test_server_dsn_points_at_the_maintenance_database() -> None:
    dsn, name = server_dsn("postgresql+asyncpg://shop:pw@db.local:5433/msashop_order?ssl=require")
    assert dsn == "postgresql://shop:pw@db.local:5433/postgres?ssl=require"
    assert name == "msashop_order"


def test_a_url_without_database_name_is_refused() -> None:
    with pytest.raises(DatabaseSetupFailed, match="names no database"):
        server_dsn("postgresql+asyncpg://shop@127.0.0.1:5432/")
