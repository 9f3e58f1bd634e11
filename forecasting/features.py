"""Features for a direct multi-horizon forecast, from a step-resampled frame.

A row describes one (origin, horizon) pair: what was known at the origin (recent
values, lags, rolling statistics, renewable share, net-load gradient) plus the
calendar and tariff price of the target time, which are known in advance. Nothing
after the origin enters a row, which `tests/forecasting/test_features.py` proves by
changing the future and finding every feature unchanged.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

COLUMNS = ("load_kw", "pv_kw", "price_eur_per_kwh", "net_load_kw")
# Each forecast target and the frame column it forecasts.
TARGET_COLUMN = {
    "load": "load_kw",
    "pv": "pv_kw",
    "price": "price_eur_per_kwh",
    "net_load": "net_load_kw",
    "net_load_change_30min": "net_load_change_30min",
}


def with_derived(frame: pd.DataFrame, step_s: int) -> pd.DataFrame:
    """Add the derived columns: net load (load - PV) and its change over 30 minutes."""
    out = frame.copy()
    out["net_load_kw"] = out["load_kw"] - out["pv_kw"]
    out["net_load_change_30min"] = out["net_load_kw"].diff(max(1, 1800 // step_s))
    return out


def steps_per_day(step_s: int) -> int:
    return 86_400 // step_s


def calendar(times: pd.DatetimeIndex, tz: ZoneInfo) -> pd.DataFrame:
    local = times.tz_convert(tz)
    hour = local.hour + local.minute / 60
    dow = local.day_of_week
    return pd.DataFrame(
        {
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "dow_sin": np.sin(2 * np.pi * dow / 7),
            "dow_cos": np.cos(2 * np.pi * dow / 7),
            "weekend": (dow >= 5).astype(float),
        },
        index=times,
    )


def origin_features(frame: pd.DataFrame, target: str, step_s: int) -> pd.DataFrame:
    """What is known at each origin time (inclusive), for one target column."""
    y = frame[target]
    day = steps_per_day(step_s)
    short = max(2, 1800 // step_s)  # 30 min window (two steps at the least)
    feats = {
        "y_now": y,
        "y_lag1": y.shift(1),
        "y_lag2": y.shift(2),
        "y_lag_hour": y.shift(max(1, 3600 // step_s)),
        # Short-horizon signal: where the level is heading now, and how far today runs
        # above or below yesterday at this time (a level shift persists for a while).
        "y_delta1": y.diff(1),
        "y_delta_hour": y - y.shift(max(1, 3600 // step_s)),
        "y_vs_yesterday": y - y.shift(day),
        "y_mean_30min": y.rolling(short, min_periods=1).mean(),
        "y_std_30min": y.rolling(short, min_periods=2).std(),
        "y_mean_day": y.rolling(day, min_periods=day // 4).mean(),
        "y_std_day": y.rolling(day, min_periods=day // 4).std(),
        "renewable_share": (frame["pv_kw"] / frame["load_kw"].clip(lower=0.1)).clip(0, 5),
        "net_load_gradient": frame["net_load_kw"].diff(),
    }
    return pd.DataFrame(feats, index=frame.index)


def rows(
    frame: pd.DataFrame,
    target: str,
    step_s: int,
    tz: ZoneInfo,
    origins: pd.DatetimeIndex,
    horizons: list[int],
) -> pd.DataFrame:
    """One row per (origin, horizon): origin features plus the target time's calendar,
    tariff price and same-time-yesterday value (which is in the past for h <= a day)."""
    known = origin_features(frame, target, step_s)
    day = steps_per_day(step_s)
    step = pd.Timedelta(seconds=step_s)
    for h in horizons:
        if h > day:
            raise ValueError(
                f"horizon {h} steps exceeds a day ({day} steps): the model is direct up to 24 h"
            )
    share = envelope_share(frame[target], origins, day * step, day)
    # One frame for every (origin, horizon) pair at once, horizon by horizon as rows:
    # pandas costs per call, not per row, so a loop over horizons cost 96 times more.
    n = len(origins)
    reps = len(horizons)
    steps_ahead = np.repeat(np.asarray(horizons, dtype=np.int64), n)
    origin_of = pd.DatetimeIndex(np.tile(origins.to_numpy(), reps), tz=origins.tz)
    at = origin_of + pd.to_timedelta(steps_ahead * step_s, unit="s")
    part = known.reindex(origins).iloc[np.tile(np.arange(n), reps)].reset_index(drop=True)
    part["horizon"] = steps_ahead.astype(float)
    cal = calendar(at, tz).reset_index(drop=True)
    part = pd.concat([part, cal], axis=1)
    part["price_at_target"] = frame["price_eur_per_kwh"].reindex(at).to_numpy()
    part["y_same_time_yesterday"] = frame[target].reindex(at - day * step).to_numpy()
    part["y_yesterday_shifted"] = part["y_same_time_yesterday"] + part["y_vs_yesterday"]
    with np.errstate(all="ignore"):
        part["y_smart_persistence"] = np.tile(share, reps) * _envelope(
            frame[target], at, day * step
        )
    part["origin"] = origin_of
    part["time"] = at
    return part


def _envelope(y: pd.Series, times: pd.DatetimeIndex, day: pd.Timedelta) -> np.ndarray:
    """The highest value at the same time of day over the seven days before each time."""
    back = np.vstack([y.reindex(times - k * day).to_numpy() for k in range(1, 8)])
    highest = np.max(np.where(np.isnan(back), -np.inf, back), axis=0)
    return np.where(np.isfinite(highest), highest, np.nan)  # NaN: no day to go by


def envelope_share(
    y: pd.Series, origins: pd.DatetimeIndex, day: pd.Timedelta, steps_a_day: int
) -> np.ndarray:
    """Each origin's value as a share of its week-high envelope: for PV, the day's
    cloudiness against a clear-sky curve learned from data, which persists for hours.
    NaN where the envelope is near zero (night) or missing. Carried to a target time
    by multiplying with that time's envelope (the `y_smart_persistence` feature)."""
    now = y.rolling(2, min_periods=1).mean().reindex(origins).to_numpy()
    week_high = y.rolling(7 * steps_a_day, min_periods=1).max().reindex(origins).to_numpy()
    env_now = _envelope(y, origins, day)
    with np.errstate(all="ignore"):
        lit = env_now > np.maximum(0.05 * week_high, 1e-6)
        return np.where(lit, np.clip(now / env_now, 0.0, 1.5), np.nan)


FEATURES = [
    "y_now",
    "y_lag1",
    "y_lag2",
    "y_lag_hour",
    "y_delta1",
    "y_delta_hour",
    "y_vs_yesterday",
    "y_mean_30min",
    "y_std_30min",
    "y_mean_day",
    "y_std_day",
    "renewable_share",
    "net_load_gradient",
    "horizon",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
    "weekend",
    "price_at_target",
    "y_same_time_yesterday",
    "y_yesterday_shifted",
    "y_smart_persistence",
]
