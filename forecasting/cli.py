"""`gridpilot forecast train|backtest|predict|models`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console

forecast_app = typer.Typer(help="Train, backtest and query the forecasters.", no_args_is_help=True)
TARGETS = ["load", "pv", "price", "net_load", "net_load_change_30min"]

Days = Annotated[int, typer.Option(min=3, max=366, help="Days of history to learn from")]
Source = Annotated[
    str,
    typer.Option(
        help="'store': the site's stored telemetry; 'synthetic': the site's simulated profiles "
        "(for a new site with no history yet)"
    ),
]


Window = Annotated[
    datetime | None,
    typer.Option(help="ISO time; without an offset, site-local. Default: --days up to now"),
]


def _window(site, days: int, start: datetime | None, end: datetime | None):
    """[start, end) in UTC: --start/--end where given, otherwise --days back from the
    other end (or from now)."""
    tz = site.site.tz
    start, end = (
        None if t is None else (t if t.tzinfo else t.replace(tzinfo=tz)) for t in (start, end)
    )
    if end is None:
        end = (
            start + timedelta(days=days)
            if start is not None
            else datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        )
    if start is None:
        start = end - timedelta(days=days)
    if end <= start:
        raise typer.BadParameter(
            f"--end ({end:%Y-%m-%d %H:%M}) must be after --start ({start:%Y-%m-%d %H:%M})",
            param_hint="--end",
        )
    return start.astimezone(UTC), end.astimezone(UTC)


def _frame(site, source: str, days: int, seed: int = 0, start=None, end=None):
    """History as a step frame, from the store or the synthetic profiles."""
    from forecasting.service import frame_from_profiles, history_frame
    from grid.profiles import generate
    from grid.store import open_store

    start, end = _window(site, days, start, end)
    days = max(1, round((end - start).total_seconds() / 86_400))
    if source == "synthetic":
        steps = days * 86_400 // site.site.step_s
        return frame_from_profiles(generate(site, start, steps, seed=seed))
    if source != "store":
        raise typer.BadParameter("use 'store' or 'synthetic'", param_hint="--source")
    store = open_store(site.settings.store_url, spool_dir=site.settings.state_dir / "spool")
    try:
        frame = history_frame(site, store, start, end)
    finally:
        store.close()
    have = frame["load_kw"].notna().mean()
    if have < 0.5:
        err_console.print(
            f"only {have:.0%} of {start:%Y-%m-%d %H:%M}Z..{end:%Y-%m-%d %H:%M}Z is in the "
            "store; import history (gridpilot data import), pick --start/--end, or train "
            "with --source synthetic until more history exists"
        )
        raise typer.Exit(1)
    return frame.interpolate(limit=8)


@forecast_app.command("train")
def train_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    target: Annotated[list[str] | None, typer.Option(help="Target(s); default: all")] = None,
    days: Days = 28,
    source: Source = "store",
    start: Window = None,
    end: Window = None,
) -> None:
    """Train, score on the last fifth of the window, save and promote one model per
    target (XGBoost's own format, in the site's state_dir/models)."""
    import pandas as pd

    from forecasting import registry
    from forecasting.backtest import backtest
    from forecasting.models import train
    from grid.config import load_site

    site = load_site(site_path)
    targets = target or TARGETS
    for t in targets:
        if t not in TARGETS:
            raise typer.BadParameter(f"{t!r}: one of {', '.join(TARGETS)}", param_hint="--target")
    frame = _frame(site, source, days, start=start, end=end)
    split = frame.index[0] + (frame.index[-1] - frame.index[0]) * 0.8
    results = Table("target", "version", "rows", "MAE 1 h", "seasonal naive", "P10-P90 cover")
    with Progress(console=err_console) as progress:
        task = progress.add_task("training", total=len(targets) * 2)
        for t in targets:
            scored = train(frame[frame.index < split], t, site.site.step_s, site.site.tz)
            progress.advance(task)
            hour = max(1, 3600 // site.site.step_s)
            score = backtest(
                scored, frame, split, frame.index[-1] - pd.Timedelta(days=1), site.site.tz, [hour]
            )[0]
            final = train(frame, t, site.site.step_s, site.site.tz)
            meta = registry.save(
                site.settings.state_dir / "models",
                final,
                metrics={
                    "mae_1h": score.mae_model,
                    "mae_1h_seasonal_naive": score.mae_seasonal_naive,
                    "coverage_p10_p90": score.coverage_p10_p90,
                },
            )
            progress.advance(task)
            results.add_row(
                t,
                meta.version,
                str(final.rows),
                f"{score.mae_model:.3f}",
                f"{score.mae_seasonal_naive:.3f}",
                f"{score.coverage_p10_p90:.0%}",
            )
    console.print(results)


@forecast_app.command("backtest")
def backtest_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    target: Annotated[str, typer.Option(help="Target")] = "load",
    days: Days = 35,
    test_days: Annotated[int, typer.Option(min=1, max=60, help="Days held out")] = 7,
    source: Source = "synthetic",
    start: Window = None,
    end: Window = None,
) -> None:
    """Rolling-origin backtest against persistence and seasonal naive, per horizon."""
    import pandas as pd

    from forecasting.backtest import backtest
    from forecasting.models import horizons_for, train
    from grid.config import load_site

    site = load_site(site_path)
    if target not in TARGETS:
        raise typer.BadParameter(f"{target!r}: one of {', '.join(TARGETS)}", param_hint="--target")
    begin, until = _window(site, days, start, end)
    span = (until - begin).total_seconds() / 86_400
    if test_days >= span - 2:
        raise typer.BadParameter(
            f"test_days ({test_days}) must leave 3 days or more of the {span:g} to train on",
            param_hint="--test-days",
        )
    frame = _frame(site, source, days, start=start, end=end)
    split = frame.index[-1] - pd.Timedelta(days=test_days)
    with Progress(console=err_console) as progress:
        task = progress.add_task("train and score", total=2)
        trained = train(frame[frame.index < split], target, site.site.step_s, site.site.tz)
        progress.advance(task)
        scores = backtest(
            trained,
            frame,
            split,
            frame.index[-1] - pd.Timedelta(days=1),
            site.site.tz,
            horizons_for(site.site.step_s),
        )
        progress.advance(task)
    table = Table(
        "horizon",
        "MAE model",
        "persistence",
        "seasonal naive",
        "skill vs naive",
        "RMSE",
        "WAPE",
        "pinball",
        "P10-P90 cover",
    )
    for s in scores:
        minutes = s.horizon_steps * site.site.step_s // 60
        table.add_row(
            f"{minutes} min",
            f"{s.mae_model:.3f}",
            f"{s.mae_persistence:.3f}",
            f"{s.mae_seasonal_naive:.3f}",
            f"{s.skill_vs_seasonal:+.0%}",
            f"{s.rmse_model:.3f}",
            f"{s.wape_model:.1%}",
            f"{s.pinball_model:.3f}",
            f"{s.coverage_p10_p90:.0%}",
        )
    console.print(table)


@forecast_app.command("predict")
def predict_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    target: Annotated[str, typer.Option(help="Target")] = "net_load",
    hours: Annotated[float, typer.Option(min=0.25, max=24, help="Horizon, hours")] = 6,
) -> None:
    """Forecast from the site's store now, with the model if one is promoted."""
    from forecasting.service import forecast
    from grid.config import load_site
    from grid.store import open_store

    site = load_site(site_path)
    store = open_store(site.settings.store_url, spool_dir=site.settings.state_dir / "spool")
    try:
        steps = max(1, round(hours * 3600 / site.site.step_s))
        result = forecast(
            site,
            store,
            datetime.now(UTC),
            target,
            steps,  # type: ignore[arg-type]
            registry_dir=site.settings.state_dir / "models",
        )
    finally:
        store.close()
    console.print(f"{target} ({result.unit}) by {result.method}: {result.note}")
    table = Table("time (local)", "P10", "P50", "P90")
    for t, lo, mid, hi in zip(result.times, result.p10, result.p50, result.p90, strict=True):
        table.add_row(
            f"{t.astimezone(site.site.tz):%a %H:%M}", f"{lo:.2f}", f"{mid:.2f}", f"{hi:.2f}"
        )
    console.print(table)


@forecast_app.command("models")
def models_cmd(
    site_path: SiteOption = DEFAULT_SITE,
    rollback: Annotated[
        str | None, typer.Option(help="Roll this target back to its previous model")
    ] = None,
) -> None:
    """List saved models (the current one marked), or roll one target back."""
    from forecasting import registry
    from grid.config import load_site

    root = load_site(site_path).settings.state_dir / "models"
    if rollback:
        console.print(f"{rollback}: now {registry.roll_back(root, rollback)}")
        return
    table = Table("target", "version", "current", "trained on", "MAE 1 h")
    for t in TARGETS:
        for m in registry.describe(root, t):
            table.add_row(
                t,
                m["version"],
                "yes" if m["current"] else "",
                f"{m['train_start'][:10]}..{m['train_end'][:10]}",
                f"{m['metrics'].get('mae_1h', float('nan')):.3f}",
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
