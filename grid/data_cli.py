"""`gridpilot data import` and `gridpilot data export`: a site's history in and out of
its store as CSV."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from grid.cli import DEFAULT_SITE, SiteOption, console
from grid.config import load_site

data_app = typer.Typer(help="Bring a site's own history in, or take it out, as CSV.")

MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="COLUMN=SERIES[:UNIT]; series: a load or PV id, grid, import_price, "
        "export_price; units kW, W, MW, kWh, Wh (energy per row), EUR/kWh, EUR/MWh",
    ),
]
BATCH = 5_000


def _key(m) -> tuple:
    return (m.asset, m.quantity, m.time)


@data_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    site_path: SiteOption = DEFAULT_SITE,
    mapping: MapOption = None,
    tz: Annotated[str | None, typer.Option(help="Zone of times without an offset")] = None,
    time_column: Annotated[str, typer.Option(help="The column holding times")] = "time",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Load, PV, meter and price columns into the site's store, on the site's step.
    Reports rows, gaps and duplicates; points already stored are replaced, so importing
    the same file twice adds nothing."""
    from grid.dataset import parse_map, read_site_csv
    from grid.store import open_store

    site = load_site(site_path)
    data = read_site_csv(file, site, parse_map(mapping or []), tz, time_column)
    points = data.measurements(site)
    store = open_store(site.settings.store_url, spool_dir=site.settings.state_dir / "spool")
    try:
        before = set()
        if points:
            end = max(p.time for p in points) + timedelta(seconds=1)
            begin = min(p.time for p in points)
            for asset, quantity in {(p.asset, p.quantity) for p in points}:
                for s in store.query(site.site.name, asset, quantity, begin, end):
                    before.add((asset, quantity, s.time))
        for i in range(0, len(points), BATCH):
            store.write(points[i : i + BATCH])
    finally:
        store.close()
    new = sum(_key(p) not in before for p in points)
    report = data.report.model_dump(mode="json") | {"points": len(points), "new_points": new}
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table("column", "series", "unit")
    for col in data.report.columns:
        table.add_row(col.column, col.series, col.unit)
    console.print(table)
    r = data.report
    console.print(
        f"{r.rows} rows from {r.start:%Y-%m-%d %H:%M}Z to {r.end:%Y-%m-%d %H:%M}Z "
        f"({r.step_s} s apart, times: {r.time_zone}); {r.duplicates} duplicate(s), "
        f"{r.gaps} gap step(s); {len(points)} points stored, {new} new"
    )


@data_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="CSV file to write")],
    start: Annotated[datetime, typer.Option(help="ISO time; naive = site-local")],
    end: Annotated[datetime, typer.Option(help="ISO time; naive = site-local")],
    site_path: SiteOption = DEFAULT_SITE,
) -> None:
    """The stored history between --start and --end, on the site's step, as a CSV that
    `data import` reads back (columns named by series, times with offsets)."""
    from grid.dataset import stored_frame, write_csv
    from grid.store import open_store

    site = load_site(site_path)
    tz = site.site.tz
    begin, until = (t if t.tzinfo else t.replace(tzinfo=tz) for t in (start, end))
    store = open_store(site.settings.store_url, spool_dir=site.settings.state_dir / "spool")
    try:
        frame = stored_frame(site, store, begin, until)
    finally:
        store.close()
    rows = write_csv(out, frame, tz)
    console.print(f"{rows} rows written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
