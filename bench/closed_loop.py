"""Seven days of the simulated site under each controller, priced on one ruler:
no control, rule-based, MPC re-planning hourly with forecasts (XGBoost, and seasonal
naive for reference), MPC with noise-free forecasts (the truth without its
step-to-step noise: the ceiling for any forecaster) and MPC with perfect foresight.

Run as `python -m bench.closed_loop` (or `make bench`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench._report import report
from forecasting.models import predict, train
from forecasting.service import frame_from_profiles
from forecasting.shares import split, typical_shares
from grid.config import load_site
from grid.profiles import SiteProfiles, generate
from optimization import closed_loop as loop

SITE = load_site(Path(__file__).parents[1] / "examples" / "site.toml")
START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
DAYS = 7
SEED = 0
TRAIN_DAYS = 28  # history the forecast models learn from, before the test week


def xgboost_forecaster() -> loop.Forecaster:
    """Load and PV models trained on the TRAIN_DAYS before the test week; totals are
    split over loads and arrays by their typical shares on recent same-kind days."""
    step_s, tz = SITE.site.step_s, SITE.site.tz
    begin = START - timedelta(days=TRAIN_DAYS + 1)
    history = generate(SITE, begin, (TRAIN_DAYS + 1) * 96, seed=SEED)
    models = {t: train(frame_from_profiles(history), t, step_s, tz) for t in ("load", "pv")}
    # Per-asset series over training and test weeks; typical_shares reads only the past.
    assets = generate(SITE, begin, (TRAIN_DAYS + DAYS + 3) * 96, seed=SEED)
    index = pd.DatetimeIndex(assets.times)
    per_asset = {
        "load": pd.DataFrame(assets.load_kw, index=index),
        "pv": pd.DataFrame(assets.pv_kw, index=index),
    }
    weights = {
        "load": {ld.id: ld.nominal_kw for ld in SITE.assets.loads},
        "pv": {p.id: p.peak_kw for p in SITE.assets.pv},
    }
    cache: dict[int, pd.DataFrame] = {}

    def forecast(truth: SiteProfiles, t: int, n: int) -> loop.Seen:
        full = cache.setdefault(id(truth), frame_from_profiles(truth))
        origin = full.index[t - 1]
        times = pd.DatetimeIndex(truth.times[t : t + n])
        seen = {}
        for target in ("load", "pv"):
            q = predict(models[target], full, origin, min(n, 96), tz)
            q = np.vstack([q, np.repeat(q[-1:], n - len(q), axis=0)])  # beyond a day: flat
            shares = typical_shares(per_asset[target], times, tz, weights[target])
            seen[target] = split(q[:, 1], shares)
        return loop.Seen(seen["load"], seen["pv"])

    return forecast


def main() -> None:
    timings = {}
    results = [loop.no_control_result(SITE, START, DAYS, SEED)]
    for name, forecaster in (
        ("rule-based", None),
        ("MPC, XGBoost forecasts", xgboost_forecaster()),
        ("MPC, seasonal-naive forecasts", loop.seasonal_naive),
        ("MPC, noise-free forecasts (ceiling)", loop.noise_free(SITE, START, DAYS, SEED)),
        ("MPC, perfect foresight", loop.perfect_foresight),
    ):
        began = time.perf_counter()
        results.append(loop.run(SITE, START, DAYS, forecaster, seed=SEED, name=name))
        timings[name] = time.perf_counter() - began
    base = results[0].costs
    best = results[-1].costs.total
    ceiling = next(r for r in results if "ceiling" in r.controller).costs.total
    rows = []
    for r in results:
        share = (base.total - r.costs.total) / (base.total - best)
        demand_cut = 1 - r.costs.demand_charge / base.demand_charge
        rows.append(
            [
                r.controller,
                f"{r.costs.total:.2f}",
                f"{r.costs.energy:.2f}",
                f"{r.costs.demand_charge:.2f} ({demand_cut:+.0%})",
                f"{r.peak_import_kw:.1f}",
                f"{r.shed_kwh:.1f}",
                str(r.switchings),
                str(r.import_limit_breaches),
                f"{share:.0%}",
                f"{(base.total - r.costs.total) / (base.total - ceiling):.0%}",
                f"{timings.get(r.controller, 0):.0f}",
            ]
        )
    report(
        "closed_loop",
        f"Closed loop, {DAYS} days of the example site (EUR; share of the perfect-foresight "
        "saving over no control)",
        [
            "controller",
            "total",
            "energy",
            "demand charge (cut)",
            "peak kW",
            "shed kWh",
            "switchings",
            "import-limit breaches",
            "PF saving captured",
            "of the ceiling's",
            "wall s",
        ],
        rows,
        [
            f"Truth: grid.profiles seed {SEED} from {START:%Y-%m-%d}; MPC re-plans every hour "
            "over 12 h with CBC and applies the first hour to the truth, the battery in "
            "peak-shaving mode (import capped at the larger of the period's peak so far and "
            "the plan's import, as dispatch sends it to the battery twin). "
            f"XGBoost: load and PV models trained on the {TRAIN_DAYS} days before, totals split "
            "by typical same-kind-day shares. The demand charge is the monthly "
            "rate prorated to the period. 'Shed' is the value-of-lost-load trade the plan "
            "makes for sheddable loads. The noise-free ceiling knows each day's cloudiness "
            "and every load's shape but not the per-step noise no forecast can know."
        ],
    )


if __name__ == "__main__":
    main()
