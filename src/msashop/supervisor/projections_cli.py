"""`msashop projections rebuild orders`: recompute a service's read models from its event store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from msashop.supervisor.admin_cli import DataDir, Email, Password, run_admin
from msashop.supervisor.dlq import AdminApi, DlqError
from msashop.supervisor.launch import ADMIN_EMAIL

app = typer.Typer(help="Read models built from event stores: rebuild them.", no_args_is_help=True)

# Which service owns the event store behind each rebuildable projection set.
REBUILDABLE = {"orders": "/api/admin/projections/order/rebuild"}


@app.command()
def rebuild(
    name: Annotated[str, typer.Argument(help=f"Which read models: {', '.join(REBUILDABLE)}.")],
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Recompute every read model of NAME from the first event (the running service does it)."""
    if name not in REBUILDABLE:
        raise typer.BadParameter(f"unknown read models {name!r}; choose from: {', '.join(REBUILDABLE)}")
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"Rebuilding the {name} read models from the event store…")
    started = time.perf_counter()

    async def work(api: AdminApi) -> dict[str, Any]:
        answer = await api.call("POST", REBUILDABLE[name])
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise DlqError(f"rebuilding {name} failed: {answer.message}")
        return answer.body

    report = run_admin(data_dir, admin_email, admin_password, work)
    console.print(
        f"[green]✓[/green] {report['orders']} orders rebuilt from {report['events']} events "
        f"(up to position {report['position']}) in {time.perf_counter() - started:.2f} s"
    )
