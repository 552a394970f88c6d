"""The `msashop` command line."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from msashop.supervisor.certs_cli import app as certs_app
from msashop.supervisor.dlq_cli import app as dlq_app
from msashop.supervisor.keys_cli import app as keys_app
from msashop.supervisor.logs_cli import logs as logs_command
from msashop.supervisor.projections_cli import app as projections_app
from msashop.supervisor.traces_cli import traces as traces_command

app = typer.Typer(help="msashop: a working microservice e-commerce platform.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(projections_app, name="projections")
app.command("logs")(logs_command)
app.command("traces")(traces_command)
app.add_typer(keys_app, name="keys")
app.add_typer(certs_app, name="certs")

SERVICES = ("user", "product", "inventory", "payment", "notification", "order")


@app.callback()
def main() -> None:
    """msashop: a working microservice e-commerce platform."""


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where databases, logs and the port map live.")] = Path(
        ".msashop"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="The gateway's port.")] = 8000,
    config: Annotated[
        Path | None, typer.Option(help="Backends (TOML); default ./msashop.toml when present.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(hidden=True, help="Run only these components (tests, debugging).")
    ] = None,
    replicas: Annotated[
        str | None,
        typer.Option(help="Instances per service, e.g. product=3,order=2 (over the config's [replicas])."),
    ] = None,
) -> None:
    """Start the whole platform in the foreground; Ctrl-C stops it."""
    import asyncio

    from msashop.supervisor import replicas as replica_counts
    from msashop.supervisor.config import ConfigError, load_config
    from msashop.supervisor.console import print_error
    from msashop.supervisor.launch import SERVICES
    from msashop.supervisor.platform import Platform, UpOptions

    try:
        settings = load_config(config)
        names = tuple(n.strip() for item in only or [] for n in item.split(",") if n.strip())
        counts = replica_counts.check(
            {**settings.replicas, **replica_counts.parse(replicas or "")}, (*SERVICES, "gateway")
        )
        platform = Platform(
            UpOptions(data_dir=data_dir, port=port, config=settings, only=names or None, replicas=counts)
        )
    except (ConfigError, ValueError) as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    raise typer.Exit(asyncio.run(platform.run()))


@app.command()
def status(
    data_dir: Annotated[Path, typer.Option(help="The data dir of the platform to ask.")] = Path(".msashop"),
) -> None:
    """Show whether each running service is ready (exit 1 when one is not)."""
    from msashop.supervisor.console import PlatformConsole
    from msashop.supervisor.status import run_status

    raise typer.Exit(run_status(data_dir, PlatformConsole([])))


@app.command()
def serve(name: Annotated[str, typer.Argument(help="gateway or a service name")]) -> None:
    """Run one service in the foreground (the supervisor runs each this way)."""
    import uvicorn

    from msashop.chassis.tls import uvicorn_options

    # Components outside msashop.services: the gateway, the legacy monolith and the registry.
    from msashop.supervisor.launch import module_of

    module = module_of(name)
    if name == "gateway":  # binds its own socket: several worker processes may share the port
        from msashop.gateway.serve import serve as serve_gateway

        serve_gateway()
        return
    try:
        service = importlib.import_module(module).create_service()
    except ModuleNotFoundError as exc:
        raise typer.BadParameter(f"unknown service {name!r}") from exc
    uvicorn.run(
        service.app,
        host=service.settings.host,
        port=service.settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=8,
        lifespan="on",
        # mTLS on: HTTPS, and only clients with a certificate from the platform's CA get through.
        **uvicorn_options(service.settings.tls_files() if service.settings.serves_tls else None),
    )
