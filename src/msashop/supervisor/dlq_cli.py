"""`msashop dlq list|show|replay|purge`: the dead letters of the running platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from msashop.supervisor.admin_cli import DataDir, Email, Password, run_admin
from msashop.supervisor.console import print_error
from msashop.supervisor.dlq import AdminApi, DlqError, find_platform, pick_services
from msashop.supervisor.launch import ADMIN_EMAIL

T = TypeVar("T")

app = typer.Typer(help="Dead letters: list, show, replay (after a fix) or purge them.", no_args_is_help=True)

Service = Annotated[str | None, typer.Option("--service", "-s", help="Only this service's dead letters.")]
OptionalId = Annotated[str | None, typer.Argument(help="A dead letter id (see `msashop dlq list`).")]
All = Annotated[bool, typer.Option("--all", help="Every dead letter (of --service, or of every service).")]


def _services(data_dir: Path, service: str | None) -> tuple[str, ...]:
    try:
        return pick_services(find_platform(data_dir), service)
    except DlqError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None


def _one_or_all(dead_letter_id: str | None, every: bool, verb: str) -> None:
    if (dead_letter_id is None) == (not every):
        print_error(f"give a dead letter id or --all (e.g. `msashop dlq {verb} --all --service order`)")
        raise typer.Exit(2)


@app.command("list")
def list_(
    service: Service = None,
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """List dead letters, oldest first, per service."""
    services = _services(data_dir, service)

    async def work(api: AdminApi) -> list[tuple[str, dict[str, Any]]]:
        rows = []
        for name in services:
            rows += [(name, d) for d in await api.dead_letters(name, required=service is not None)]
        return rows

    rows = run_admin(data_dir, admin_email, admin_password, work)
    console = Console(highlight=False, soft_wrap=True)
    if not rows:
        where = f" in {service}" if service else ""
        console.print(Text(f"No dead letters{where}.", style="green"))
        return
    table = Table(title=f"Dead letters ({len(rows)})")
    for column in ("service", "id", "subject", "key", "attempts", "failed at", "reason"):
        table.add_column(column, overflow="fold")
    for name, letter in rows:
        table.add_row(
            name,
            letter["id"],
            letter["subject"],
            str(letter["envelope"].get("key", "")),
            str(letter["attempts"]),
            letter["failed_at"],
            Text(letter["reason"], style="red"),
        )
    console.print(table)


@app.command()
def show(
    dead_letter_id: Annotated[str, typer.Argument(help="A dead letter id (see `msashop dlq list`).")],
    service: Service = None,
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Show one dead letter with its original envelope."""
    services = _services(data_dir, service)

    async def work(api: AdminApi) -> tuple[str, dict[str, Any]]:
        return await api.find(services, dead_letter_id)

    name, letter = run_admin(data_dir, admin_email, admin_password, work)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("id", letter["id"])
    grid.add_row("service", name)
    grid.add_row("subject", letter["subject"])
    grid.add_row("attempts", str(letter["attempts"]))
    grid.add_row("failed at", letter["failed_at"])
    grid.add_row("reason", Text(letter["reason"], style="red"))
    console = Console(highlight=False, soft_wrap=True)
    console.print(grid)
    console.print(Text("envelope", style="bold"))
    console.print(JSON.from_data(letter["envelope"]))


@app.command()
def replay(
    dead_letter_id: OptionalId = None,
    every: All = False,
    service: Service = None,
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Deliver dead letters again to the service that failed them (after fixing the cause)."""
    _act("replay", dead_letter_id, every, service, data_dir, admin_password, admin_email)


@app.command()
def purge(
    dead_letter_id: OptionalId = None,
    every: All = False,
    service: Service = None,
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Drop dead letters for good."""
    _act("purge", dead_letter_id, every, service, data_dir, admin_password, admin_email)


def _act(
    action: Literal["replay", "purge"],
    dead_letter_id: str | None,
    every: bool,
    service: str | None,
    data_dir: Path,
    admin_password: str | None,
    admin_email: str,
) -> None:
    """Replay or purge one dead letter (found in any service) or all of one or every service."""
    _one_or_all(dead_letter_id, every, action)
    services = _services(data_dir, service)

    async def work(api: AdminApi) -> list[tuple[str, int]]:
        one, every_of = (api.replay, api.replay_all) if action == "replay" else (api.purge, api.purge_all)
        if dead_letter_id is not None:
            name, _ = await api.find(services, dead_letter_id)
            await one(name, dead_letter_id)
            return [(name, 1)]
        return [(n, await every_of(n, required=service is not None)) for n in services]

    _report(
        run_admin(data_dir, admin_email, admin_password, work), "Replayed" if action == "replay" else "Purged"
    )


def _report(counts: list[tuple[str, int]], done: str) -> None:
    console = Console(highlight=False, soft_wrap=True)
    total = sum(n for _, n in counts)
    where = ", ".join(f"{name}: {n}" for name, n in counts if n)
    console.print(Text(f"{done} {total} dead letter(s)" + (f" ({where})" if where else "."), style="bold"))
