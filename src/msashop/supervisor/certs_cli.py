"""`msashop certs list|rotate`: the platform's mTLS certificates in `<data-dir>/tls`.

A process loads its certificate when it starts: a rotated one is used from its next start
(restart `msashop up`; a process the supervisor restarts after a crash picks it up too). The
old certificate stays valid until it expires, so nothing breaks in between.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from msashop.chassis.tls import TlsFiles
from msashop.supervisor import certificates
from msashop.supervisor.console import print_error
from msashop.supervisor.launch import START_ORDER

app = typer.Typer(help="mTLS certificates: list, rotate.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option(help="The data dir of the platform.")]


@app.command("list")
def list_certs(data_dir: DataDir = Path(".msashop")) -> None:
    """Every certificate the platform's CA issued and when it expires."""
    directory = certificates.tls_dir(data_dir)
    names = certificates.issued_names(directory)
    if not names:
        print_error(f"no certificates in {directory} (mTLS has not been on for this data dir)")
        raise typer.Exit(1)
    now = dt.datetime.now(dt.UTC)
    table = Table("component", "expires", "days left", box=None)
    for name in names:
        expires = certificates.expires(TlsFiles.of(directory, name))
        left = f"{(expires - now).days}" if expires else "-"
        table.add_row(name, f"{expires:%Y-%m-%d %H:%M} UTC" if expires else "unreadable", left)
    Console(highlight=False, soft_wrap=True).print(table)


@app.command()
def rotate(
    service: Annotated[
        str | None, typer.Argument(help="One component (e.g. order); default: every one.")
    ] = None,
    data_dir: DataDir = Path(".msashop"),
) -> None:
    """Issue new keys and certificates; each process uses its new one from its next start."""
    directory = certificates.tls_dir(data_dir)
    known = [*START_ORDER, *certificates.CLIENT_ONLY]
    if service is not None and service not in known:
        print_error(f"unknown component {service!r}; known: {', '.join(known)}")
        raise typer.Exit(2)
    names = [service] if service else certificates.issued_names(directory) or known
    try:
        done = certificates.rotate(directory, names)
    except certificates.CertificateError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[green]✓[/green] new certificates in {directory}: {', '.join(done)}")
    console.print("Running processes keep their old certificate (still valid) until they restart.")
