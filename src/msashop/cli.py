"""The `msashop` command line."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="msashop: a working microservice e-commerce platform.", no_args_is_help=True)

SERVICES = ("user", "product", "inventory", "payment", "notification", "order")


@app.callback()
def main() -> None:
    """msashop: a working microservice e-commerce platform."""


@app.command()
def serve(name: Annotated[str, typer.Argument(help="gateway or a service name")]) -> None:
    """Run one service in the foreground (the supervisor runs each this way)."""
    import uvicorn

    module = "msashop.gateway.main" if name == "gateway" else f"msashop.services.{name}.main"
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
    )
