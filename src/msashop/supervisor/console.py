"""Everything the supervisor prints: prefixed child lines, progress, errors and the summary."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from msashop.supervisor.logs import ConsoleLine

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green")
LEVEL_STYLES = {
    "debug": "dim",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold red",
    "exception": "bold red",
}


@dataclass(frozen=True)
class Summary:
    gateway_url: str
    data_dir: str
    admin_email: str
    admin_password: str | None  # None: unchanged since an earlier run
    started_in: float
    config_source: str | None = None


class PlatformConsole:
    def __init__(self, names: Sequence[str], console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.width = max((len(n) for n in names), default=8)
        self.colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
        # Consoles that cannot encode a check mark (a C locale) still get a readable mark.
        encoding = (getattr(self.console.file, "encoding", None) or "utf-8").lower()
        self.tick = "✓" if encoding.replace("-", "").startswith("utf") else "OK"

    def _prefix(self, name: str) -> Text:
        return Text(f"{name:<{self.width}} │ ", style=self.colours.get(name, "white"))

    def child_line(self, name: str, line: ConsoleLine) -> None:
        text = self._prefix(name)
        if line.level and line.level != "info":
            text.append(f"{line.level.upper()} ", style=LEVEL_STYLES.get(line.level, ""))
        text.append(line.text, style=LEVEL_STYLES.get(line.level, ""))
        self.console.print(text)

    def step(self, message: str) -> None:
        self.console.print(Text(message, style="bold"))

    def healthy(self, name: str, url: str, seconds: float, *, again: bool = False) -> None:
        text = Text(f"  {self.tick} ", style="bold green")
        text.append(f"{name:<{self.width}}", style=self.colours.get(name, "white"))
        text.append(f"  {url}  ({seconds:.1f} s)")
        if again:
            text.append("  back after a restart", style="yellow")
        self.console.print(text)

    def stopped(self, name: str, seconds: float) -> None:
        text = Text("  ■ ", style="dim")
        text.append(f"{name:<{self.width}}", style=self.colours.get(name, "white"))
        text.append(f"  stopped ({seconds:.1f} s)", style="dim")
        self.console.print(text)

    def warn(self, message: str) -> None:
        self.console.print(Text(f"! {message}", style="yellow"))

    def error(self, message: str, details: Sequence[str] = ()) -> None:
        self.console.print(
            Text(f"✗ {message}" if self.tick != "OK" else f"ERROR {message}", style="bold red")
        )
        for line in details:
            self.console.print(Text(f"    {line}", style="dim"))

    def summary(self, s: Summary) -> None:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("Storefront", f"{s.gateway_url}/")
        grid.add_row("API", f"{s.gateway_url}/api")
        grid.add_row("Health", f"{s.gateway_url}/health")
        grid.add_row("Metrics", f"{s.gateway_url}/metrics")
        grid.add_row("Data dir", s.data_dir)
        if s.config_source:
            grid.add_row("Config", s.config_source)
        password = s.admin_password if s.admin_password is not None else "(unchanged)"
        grid.add_row("Admin login", f"{s.admin_email}  /  {password}")
        title = f"msashop is up ({s.started_in:.1f} s)"
        self.console.print(Panel(grid, title=title, subtitle="Press Ctrl-C to stop", expand=False))

    def status_table(self, rows: Sequence[tuple[str, str, bool, str]]) -> None:
        table = Table(title="msashop status")
        table.add_column("service")
        table.add_column("url")
        table.add_column("ready")
        table.add_column("detail", overflow="fold")
        for name, url, ok, detail in rows:
            table.add_row(
                name, url, Text("up" if ok else "DOWN", style="green" if ok else "bold red"), detail
            )
        self.console.print(table)


def print_error(message: str) -> None:
    """One line on stderr; plain Text, so "[bus]" in a message is not taken for markup."""
    console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    console.print(Text.assemble(("error: ", "bold red"), message))
