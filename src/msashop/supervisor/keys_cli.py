"""`msashop keys list|rotate|retire`: the user service's access-token signing keys, through the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from msashop.supervisor.admin_cli import DataDir, Email, Password, run_admin
from msashop.supervisor.dlq import AdminApi, Answer, DlqError
from msashop.supervisor.launch import ADMIN_EMAIL

app = typer.Typer(help="Access-token signing keys: list, rotate, retire.", no_args_is_help=True)

KEYS = "/api/admin/keys/user"


def keys_path(*rest: str) -> str:
    return "/".join([KEYS, *(quote(part, safe="") for part in rest)])


def _body(answer: Answer, doing: str) -> Any:
    if answer.status in (401, 403):
        raise DlqError(f"cannot {doing}: the gateway refused the admin session ({answer.message})")
    if not 200 <= answer.status < 300:
        raise DlqError(f"cannot {doing}: {answer.message}")
    return answer.body


def _table(keys: list[dict[str, Any]]) -> Table:
    table = Table("kid", "state", "activated", "superseded", "verifies until", box=None)
    for key in keys:
        until = key.get("published_until") or ("-" if key["state"] != "current" else "(current)")
        table.add_row(
            key["kid"], key["state"], key.get("activated_at") or "-", key.get("superseded_at") or "-", until
        )
    return table


@app.command("list")
def list_keys(
    data_dir: DataDir = Path(".msashop"), admin_password: Password = None, admin_email: Email = ADMIN_EMAIL
) -> None:
    """Every signing key the user service knows and its state."""

    async def work(api: AdminApi) -> Any:
        return _body(await api.call("GET", keys_path()), "list the signing keys")

    Console(highlight=False, soft_wrap=True).print(
        _table(run_admin(data_dir, admin_email, admin_password, work))
    )


@app.command()
def rotate(
    data_dir: DataDir = Path(".msashop"), admin_password: Password = None, admin_email: Email = ADMIN_EMAIL
) -> None:
    """Make a new key current. Tokens signed with the old one keep verifying until they expire.

    Development generates the new key; production promotes a key put beforehand in the user
    service's signing_keys_dir (or signing_keys_pem, then a restart).
    """

    async def work(api: AdminApi) -> Any:
        return _body(await api.call("POST", keys_path("rotate")), "rotate the signing key")

    result = run_admin(data_dir, admin_email, admin_password, work)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[green]✓[/green] new tokens are signed with {result['current']}")
    console.print(_table(result["keys"]))


@app.command()
def retire(
    kid: Annotated[str, typer.Argument(help="The key id (see `msashop keys list`).")],
    data_dir: DataDir = Path(".msashop"),
    admin_password: Password = None,
    admin_email: Email = ADMIN_EMAIL,
) -> None:
    """Stop a previous key verifying now (it leaked): every token it signed fails at once."""

    async def work(api: AdminApi) -> Any:
        return _body(await api.call("POST", keys_path(kid, "retire")), f"retire {kid}")

    result = run_admin(data_dir, admin_email, admin_password, work)
    Console(highlight=False, soft_wrap=True).print(f"[green]✓[/green] {result['kid']} is {result['state']}")
