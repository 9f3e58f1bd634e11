"""Commands of the composition root: `gridpilot demo`."""

from __future__ import annotations

from typing import Annotated

import typer

from grid.cli import DEFAULT_SITE, SiteOption, console


def demo(
    site_path: SiteOption = DEFAULT_SITE,
    speed: Annotated[
        float, typer.Option(min=1, max=10_000, help="Simulated-clock speed (60 = an hour a minute)")
    ] = 60.0,
    port: Annotated[int, typer.Option(min=1, max=65535, help="MCP HTTP port")] = 8765,
    seconds: Annotated[
        float | None,
        typer.Option(min=1, help="Stop after this many seconds (default: until Ctrl-C)"),
    ] = None,
) -> None:
    """Run the whole site on embedded defaults: broker, simulator, gateway, SQLite,
    guardrails and the MCP server over HTTP; print the endpoint and demo tokens."""
    from app.demo import run_demo

    run_demo(site_path, speed, port, seconds, console)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
