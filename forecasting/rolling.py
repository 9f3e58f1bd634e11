"""gridpilot's own forecasts inside a closed loop, as a live site would have them: load
and PV models trained on the history before the loop starts and re-trained every
`retrain_every` steps on everything seen since, totals split over the assets by
their typical shares (`forecasting.shares`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from forecasting.models import Trained, predict, train
from forecasting.service import frame_from_profiles
from forecasting.shares import split, typical_shares
from grid.config import SiteConfig
from grid.profiles import SiteProfiles

# (truth, first step, steps) -> per-load and per-PV forecasts for those steps
RollingForecaster = Callable[
    [SiteProfiles, int, int], tuple[dict[str, list[float]], dict[str, list[float]]]
]


def rolling_forecaster(
    site: SiteConfig, truth: SiteProfiles, retrain_every: int, n_estimators: int = 200
) -> RollingForecaster:
    """Forecasts for steps t..t+n made at t from the truth before t only. The models are
    (re)trained the first time they are asked and then every `retrain_every` steps."""
    step_s, tz = site.site.step_s, site.site.tz
    day = 86_400 // step_s
    full = frame_from_profiles(truth)
    index = pd.DatetimeIndex(truth.times)
    per_asset = {
        "load": pd.DataFrame(truth.load_kw, index=index),
        "pv": pd.DataFrame(truth.pv_kw, index=index),
    }
    weights = {
        "load": {ld.id: ld.nominal_kw for ld in site.assets.loads},
        "pv": {p.id: p.peak_kw for p in site.assets.pv},
    }
    models: dict[str, Trained] = {}
    trained_at = [-(10**9)]

    def forecast(seen: SiteProfiles, t: int, n: int):
        if t - trained_at[0] >= retrain_every:
            past = full.iloc[:t]
            for target in ("load", "pv"):
                models[target] = train(past, target, step_s, tz, n_estimators=n_estimators)
            trained_at[0] = t
        origin = full.index[t - 1]
        times = index[t : t + n]
        out = {}
        for target in ("load", "pv"):
            q = predict(models[target], full.iloc[:t], origin, min(n, day), tz)
            q = np.vstack([q, np.repeat(q[-1:], n - len(q), axis=0)])  # beyond a day: flat
            shares = typical_shares(per_asset[target].iloc[:t], times, tz, weights[target])
            out[target] = split(q[:, 1], shares)
        return out["load"], out["pv"]

    return forecast


def net_error_kw(
    site: SiteConfig, truth: SiteProfiles, first: int, days: int = 2, n_estimators: int = 200
) -> float:
    """Mean absolute error of the one-step-ahead net load (load - PV) forecast over the
    `days` before step `first`, from models trained on what came before them: how far a
    plan's next step tends to miss, learnt on the training days. The closed loop keeps
    that much headroom under the billing-period peak (`peak_margin_kw`); 0 where the
    history before those days is too short to train on."""
    if days < 1:
        return 0.0
    step_s, tz = site.site.step_s, site.site.tz
    begin = first - days * 86_400 // step_s
    full = frame_from_profiles(truth)
    try:
        models = {t: train(full.iloc[:begin], t, step_s, tz, n_estimators) for t in ("load", "pv")}
    except ValueError:  # too little history before the held-out days: no margin learnt
        return 0.0
    errors = []
    for t in range(begin, first):
        origin = full.index[t - 1]
        load, pv = (predict(models[k], full.iloc[:t], origin, 1, tz)[0, 1] for k in ("load", "pv"))
        true = sum(float(v[t]) for v in truth.load_kw.values()) - sum(
            float(v[t]) for v in truth.pv_kw.values()
        )
        errors.append(abs(true - (load - pv)))
    return float(np.mean(errors))
