"""What every admin command of the CLI shares: finding the platform, logging in as its admin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from msashop.supervisor.console import print_error
from msashop.supervisor.dlq import AdminApi, DlqError, find_platform

T = TypeVar("T")

DataDir = Annotated[Path, typer.Option(help="The data dir of the running platform.")]
Password = Annotated[
    str | None,
    typer.Option(
        "--admin-password",
        envvar="MSASHOP_ADMIN_PASSWORD",
        show_envvar=True,
        help="The admin's password (printed by `msashop up` on its first run).",
    ),
]
Email = Annotated[str, typer.Option("--admin-email", help="The admin's email.")]


def run_admin(
    data_dir: Path, email: str, password: str | None, work: Callable[[AdminApi], Awaitable[T]]
) -> T:
    """Log in through the platform's gateway and run `work`; a DlqError ends the command (exit 1)."""

    async def session() -> T:
        if not password:
            raise DlqError(
                "the admin password is needed: pass --admin-password or set MSASHOP_ADMIN_PASSWORD"
            )
        platform = find_platform(data_dir)
        async with AdminApi(platform.gateway_url) as api:
            await api.login(email, password)
            return await work(api)

    try:
        return asyncio.run(session())
    except DlqError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None
