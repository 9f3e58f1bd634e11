"""`gridpilot optimize plan` and `gridpilot optimize closed-loop`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console
from grid.data_cli import MapOption

optimize_app = typer.Typer(
    help="Plan dispatch with the MILP; compare controllers.", no_args_is_help=True
)
SolverOption = Annotated[str, typer.Option(help="cbc or highs")]


@optimize_app.command("plan")
def plan_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    hours: Annotated[float, typer.Option(min=0.25, max=744, help="Horizon, hours")] = 24,
    solver: SolverOption = "cbc",
    seed: Annotated[int, typer.Option(help="Profile seed for the simulated forecast")] = 0,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="Plan as of this time (ISO; naive = site-local) from stored data: "
            "forecasts by the site's trained models, SoC and billing peak from the store"
        ),
    ] = None,
) -> None:
    """One plan from now for the site's simulated profiles (the perfect forecast of the
    simulator), or with --at from the site's stored history, as the live `optimize`
    tool plans; shows costs against no control and the first hours of setpoints."""
    from grid.config import load_site
    from grid.profiles import generate
    from optimization.inputs import initial_state, inputs_from_profiles
    from optimization.solve import plan

    site = load_site(site_path)
    step_s = site.site.step_s
    if at is not None:
        # The live path's input builder (tools.plan.inputs_at), fed from the store.
        from grid.store import open_store
        from tools.plan import inputs_at, stored_readings

        now = (at if at.tzinfo else at.replace(tzinfo=site.site.tz)).astimezone(UTC)
        store = open_store(site.settings.store_url, spool_dir=site.settings.state_dir / "spool")
        try:
            inputs, notes = inputs_at(
                site,
                store,
                now,
                min(hours, 24),
                stored_readings(site, store, now),
                site.settings.state_dir / "models",
            )
        finally:
            store.close()
        for note in notes:
            err_console.print(note)
    else:
        now = datetime.now(UTC)
        start = now - timedelta(seconds=now.timestamp() % step_s)
        steps = max(1, round(hours * 3600 / step_s))
        inputs = inputs_from_profiles(
            site, generate(site, start, steps, seed=seed), initial_state(site)
        )
    with console.status(f"solving {inputs.steps} steps with {solver}"):
        made = plan(site, inputs, solver=solver, now=now)  # type: ignore[arg-type]
    console.print(made.explanation)
    costs = Table("cost (EUR)", "plan", "no control")
    for field in (
        "energy",
        "demand_charge",
        "degradation",
        "shed_load",
        "fuel",
        "switching",
        "total",
    ):
        costs.add_row(
            field,
            f"{getattr(made.costs, field + '_eur'):.2f}",
            f"{getattr(made.baseline, field + '_eur'):.2f}",
        )
    console.print(costs)
    table = Table("time (local)", "import kW", "battery kW", "SoC", "peaker kW", "relays off")
    for step in made.steps[: max(1, round(6 * 3600 / step_s))]:
        table.add_row(
            f"{step.time.astimezone(site.site.tz):%a %H:%M}",
            f"{step.grid_import_kw:.1f}",
            " ".join(f"{v:+.1f}" for v in step.battery_kw.values()),
            " ".join(f"{v:.0%}" for v in step.soc_fraction.values()),
            " ".join(f"{v:.1f}" for v in step.peaker_kw.values()),
            ", ".join(k for k, on in step.relay_on.items() if not on) or "-",
        )
    console.print(table)
    console.print(f"status {made.status}, solver {made.solver}, {made.solve_time_s:.2f} s")


@optimize_app.command("closed-loop")
def closed_loop_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    days: Annotated[float, typer.Option(min=0.5, max=31, help="Days to run")] = 7,
    seed: Annotated[int, typer.Option(help="Profile seed (simulated site)")] = 0,
    solver: SolverOption = "cbc",
    data: Annotated[
        Path | None, typer.Option(help="A CSV of the site's own history (see `data import`)")
    ] = None,
    train_days: Annotated[
        int, typer.Option(min=2, max=365, help="With --data: days to train and tune on")
    ] = 28,
    mapping: MapOption = None,
    tz: Annotated[str | None, typer.Option(help="Zone of naive times in --data")] = None,
    time_column: Annotated[str, typer.Option(help="The --data column holding times")] = "time",
    horizon_hours: Annotated[float, typer.Option(min=1, max=48, help="MPC horizon")] = 24,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON, one object per controller")
    ] = False,
) -> None:
    """Controllers compared over a period, each step applied to the truth by the rule
    live dispatch follows. With --data: trains on the first --train-days of the file,
    then runs --days with no control, the threshold rule (tuned on the training days),
    MPC on gridpilot's own forecasts (re-trained daily), MPC with a perfect forecast and
    the perfect-foresight optimum. Without: the simulated site."""
    from grid.config import load_site
    from optimization import closed_loop as loop

    site = load_site(site_path)
    if data is not None:
        results = _closed_loop_on_data(
            site,
            data,
            train_days,
            days,
            mapping or [],
            tz,
            time_column,
            horizon_hours,
            solver,
            as_json,
        )
        if as_json:
            typer.echo(json.dumps([r.model_dump() for r in results], indent=1))
        else:
            console.print(comparison_table(results))
        return
    start = datetime(2026, 6, 1, tzinfo=UTC)
    results = [loop.no_control_result(site, start, days, seed)]
    with Progress(console=err_console) as progress:
        for name, forecaster in (
            ("rule-based", None),
            ("MPC, seasonal-naive forecast", loop.seasonal_naive),
            ("MPC, noise-free forecast", loop.noise_free(site, start, days, seed)),
            ("MPC, perfect foresight", loop.perfect_foresight),
        ):
            task = progress.add_task(name, total=1.0)
            results.append(
                loop.run(
                    site,
                    start,
                    days,
                    forecaster,
                    seed=seed,
                    solver=solver,
                    name=name,  # type: ignore[arg-type]
                    progress=lambda done, total, task=task: progress.update(
                        task, completed=done / total
                    ),
                )
            )
    console.print(closed_loop_table(results))


def _closed_loop_on_data(
    site,
    data: Path,
    train_days: int,
    days: float,
    mapping: list[str],
    tz: str | None,
    time_column: str,
    horizon_hours: float,
    solver: str,
    quiet: bool,
):
    from forecasting.rolling import net_error_kw, rolling_forecaster
    from grid.dataset import missing_for_planning, parse_map, read_site_csv
    from grid.errors import ConfigError
    from optimization import closed_loop as loop

    try:
        read = read_site_csv(data, site, parse_map(mapping), tz, time_column)
        missing = missing_for_planning(site, read)
        if missing:
            raise ConfigError(f"{data}: no series for {', '.join(missing)}; add --map COLUMN=ID")
    except ConfigError as exc:
        err_console.print(f"error: {exc}")
        raise typer.Exit(2) from None
    truth = read.profiles(site)
    day = 86_400 // site.site.step_s
    horizon = max(1, round(horizon_hours * 3600 / site.site.step_s))
    first, last = train_days * day, train_days * day + int(days * day)
    if last + horizon > len(truth.times):
        err_console.print(
            f"error: --train-days {train_days} + --days {days:g} + the {horizon_hours:g} h "
            f"horizon need {(last + horizon) / day:.1f} days; {data} holds "
            f"{len(truth.times) / day:.1f}"
        )
        raise typer.Exit(2)
    rolling = rolling_forecaster(site, truth, retrain_every=day)

    def forecaster(seen, t: int, n: int) -> loop.Seen:
        return loop.Seen(*rolling(seen, t, n))

    return loop.compare(
        site,
        truth,
        0,
        first,
        last,
        forecaster,
        horizon_steps=horizon,
        replan_every=max(1, 3600 // site.site.step_s),
        solver=solver,
        peak_margin_kw=net_error_kw(site, truth, first, min(2, train_days // 2)),
        progress=None if quiet else lambda name: err_console.print(f"running {name}"),
    )


def comparison_table(results) -> Table:
    table = Table(
        "controller",
        "total EUR",
        "energy EUR",
        "demand EUR",
        "peak import kW",
        "limit breaches",
        "days below SoC floor",
        "share of PF saving",
    )
    for r in results:
        table.add_row(r.controller, *r.cells())
    return table


def closed_loop_table(results) -> Table:
    base, best = results[0].costs.total_eur, results[-1].costs.total_eur
    table = Table(
        "controller",
        "cost EUR",
        "demand charge EUR",
        "peak import kW",
        "shed kWh",
        "switchings",
        "limit breaches",
        "share of PF saving",
    )
    for r in results:
        share = (base - r.costs.total_eur) / (base - best) if base != best else 0.0
        table.add_row(
            r.controller,
            f"{r.costs.total_eur:.2f}",
            f"{r.costs.demand_charge_eur:.2f}",
            f"{r.peak_import_kw:.1f}",
            f"{r.shed_kwh:.1f}",
            str(r.switchings),
            str(r.import_limit_breaches),
            f"{share:.0%}",
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(optimize_app, name="optimize")
