"""The `gridpilot` command.

The root lives here, at the bottom of the layout; every room above adds its own
sub-commands through the `gridpilot.commands` entry-point group (a function
`register(app)`), so nothing here imports upwards. Rooms keep heavy imports
inside their command functions so `gridpilot --help` stays quick.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from grid.config import SiteConfig, load_site
from grid.errors import GridpilotError

DEFAULT_SITE = Path("examples/site.toml")

SiteOption = Annotated[
    Path,
    typer.Option(
        "--site",
        "-s",
        envvar="GRIDPILOT_SITE",
        help="Site file (TOML). Also read from $GRIDPILOT_SITE.",
    ),
]

console = Console()
# Everything that is not a command's own result goes to stderr: on the stdio MCP
# transport, stdout belongs to the protocol.
err_console = Console(stderr=True)

app = typer.Typer(
    name="gridpilot",
    help="Let AI agents operate a power site safely: telemetry, forecasts, plans and "
    "guarded actions, over MCP.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check and show site files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def _root(
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level", envvar="GRIDPILOT_LOG_LEVEL", help="debug, info, warning or error."
        ),
    ] = "warning",
) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"{log_level!r} is not one of debug, info, warning, error", param_hint="--log-level"
        )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="Site file to validate.")]) -> None:
    """Validate a site file and summarise what it describes."""
    site = load_site(path)
    console.print(
        f"[green]ok[/green] {path}: site [bold]{site.site.name}[/bold] "
        f"({site.site.timezone}, {site.site.step_s} s steps)"
    )
    console.print(summary_table(site))


@config_app.command("show")
def config_show(path: Annotated[Path, typer.Argument(help="Site file to print.")]) -> None:
    """Print the validated site file as JSON, with every default filled in."""
    console.print_json(load_site(path).model_dump_json(exclude={"principals"}))


def summary_table(site: SiteConfig) -> Table:
    table = Table("asset", "kind", "device", "rating")
    a = site.assets
    for b in a.batteries:
        table.add_row(
            b.id,
            "battery",
            b.device,
            f"{b.capacity_kwh:g} kWh, ±{b.max_charge_kw:g}/{b.max_discharge_kw:g} kW",
        )
    for p in a.pv:
        table.add_row(p.id, "pv", p.device, f"{p.peak_kw:g} kWp")
    for ld in a.loads:
        table.add_row(
            ld.id,
            "load" + (" (critical)" if ld.critical else ""),
            f"{ld.board}#{ld.channel}" if ld.switchable else "metered",
            f"{ld.nominal_kw:g} kW, priority {ld.priority}",
        )
    for g in a.peakers:
        table.add_row(g.id, "peaker", g.device, f"{g.min_kw:g}-{g.max_kw:g} kW")
    table.add_row(
        "grid",
        "connection",
        site.grid.meter or "-",
        f"import ≤ {site.grid.import_limit_kw:g} kW, export ≤ {site.grid.export_limit_kw:g} kW",
    )
    return table


def _register_rooms() -> None:
    from grid.data_cli import register  # the root's own room: data in and out of the store

    register(app)
    for ep in sorted(entry_points(group="gridpilot.commands"), key=lambda e: e.name):
        ep.load()(app)


def main() -> None:
    _register_rooms()
    try:
        app()
    except GridpilotError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
