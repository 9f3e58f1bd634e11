"""`gridpilot optimize plan` and `gridpilot optimize closed-loop`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console

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
) -> None:
    """One plan from now for the site's simulated profiles (the perfect forecast of the
    simulator); shows costs against no control and the first hours of setpoints."""
    from grid.config import load_site
    from grid.profiles import generate
    from optimization.inputs import initial_state, inputs_from_profiles
    from optimization.solve import plan

    site = load_site(site_path)
    step_s = site.site.step_s
    now = datetime.now(UTC)
    start = now - timedelta(seconds=now.timestamp() % step_s)
    steps = max(1, round(hours * 3600 / step_s))
    inputs = inputs_from_profiles(
        site, generate(site, start, steps, seed=seed), initial_state(site)
    )
    with console.status(f"solving {steps} steps with {solver}"):
        made = plan(site, inputs, solver=solver)  # type: ignore[arg-type]
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
            field, f"{getattr(made.costs, field):.2f}", f"{getattr(made.baseline, field):.2f}"
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
    days: Annotated[float, typer.Option(min=0.5, max=31, help="Days to simulate")] = 7,
    seed: Annotated[int, typer.Option(help="Profile seed")] = 0,
    solver: SolverOption = "cbc",
) -> None:
    """No control, rule-based, and MPC with seasonal-naive, noise-free (the ceiling for
    any forecast) and perfect forecasts over the simulated site: costs, peak, shed
    energy, switchings, share of the perfect-foresight saving."""
    from grid.config import load_site
    from optimization import closed_loop as loop

    site = load_site(site_path)
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


def closed_loop_table(results) -> Table:
    base, best = results[0].costs.total, results[-1].costs.total
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
        share = (base - r.costs.total) / (base - best) if base != best else 0.0
        table.add_row(
            r.controller,
            f"{r.costs.total:.2f}",
            f"{r.costs.demand_charge:.2f}",
            f"{r.peak_import_kw:.1f}",
            f"{r.shed_kwh:.1f}",
            str(r.switchings),
            str(r.import_limit_breaches),
            f"{share:.0%}",
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(optimize_app, name="optimize")
