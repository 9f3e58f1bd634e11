"""Features for a direct multi-horizon forecast, from a step-resampled frame.

A row describes one (origin, horizon) pair: what was known at the origin (recent
values, lags, rolling statistics, renewable share, net-load gradient) plus the
calendar and tariff price of the target time, which are known in advance. Nothing
after the origin enters a row, which `tests/forecasting/test_features.py` proves by
changing the future and finding every feature unchanged.
"""

from __future__ import annotations

import warnings
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
    net = frame["load_kw"].to_numpy(dtype=float) - frame["pv_kw"].to_numpy(dtype=float)
    lag = max(1, 1800 // step_s)
    change = np.full(len(net), np.nan)
    change[lag:] = net[lag:] - net[:-lag]
    return frame.assign(net_load_kw=net, net_load_change_30min=change)


def steps_per_day(step_s: int) -> int:
    return 86_400 // step_s


def calendar(times: pd.DatetimeIndex, tz: ZoneInfo) -> dict[str, np.ndarray]:
    local = times.tz_convert(tz)
    hour = (local.hour + local.minute / 60).to_numpy(dtype=float)
    dow = local.day_of_week.to_numpy()
    return {
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "dow_sin": np.sin(2 * np.pi * dow / 7),
        "dow_cos": np.cos(2 * np.pi * dow / 7),
        "weekend": (dow >= 5).astype(float),
    }


# Everything below works on numpy arrays and row positions: a forecast builds its rows
# on each call, and pandas costs per call (a reindex is ~0.1 ms however short), which
# made `rows` 22 ms of a 96-step forecast. `tests/forecasting/test_features.py` checks
# the output against the pandas formulation (reindex, shift, rolling) on real frames.


def _ns(times: pd.DatetimeIndex) -> np.ndarray:
    return times.as_unit("ns").asi8


def _positions(index: pd.DatetimeIndex, times: np.ndarray) -> np.ndarray:
    """The row of each time (int64 ns since the epoch) in `index`, -1 where none."""
    if len(index) == 0:
        return np.full(times.shape, -1, dtype=np.int64)
    if not index.is_monotonic_increasing:
        return index.get_indexer(pd.DatetimeIndex(times.view("M8[ns]")).tz_localize("UTC"))
    stamps = _ns(index)
    pos = np.minimum(np.searchsorted(stamps, times), len(stamps) - 1)
    return np.where(stamps[pos] == times, pos, -1)


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """values[pos], NaN where pos is negative (before the frame, or no such row)."""
    if len(values) == 0:
        return np.full(pos.shape, np.nan)
    return np.where(pos >= 0, values[np.clip(pos, 0, len(values) - 1)], np.nan)


def _windows(values: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """The `width` rows ending at each position (NaN before the frame's first row and
    for a missing position): what `rolling(width)` sees there."""
    padded = np.concatenate([np.full(width, np.nan), values])
    view = np.lib.stride_tricks.sliding_window_view(padded, width)
    out = view[np.clip(pos, -1, len(values) - 1) + 1]
    return np.where((pos >= 0)[:, None], out, np.nan)


def _rolling_mean(values: np.ndarray, pos: np.ndarray, width: int, min_periods: int) -> np.ndarray:
    w = _windows(values, pos, width)
    count = np.sum(~np.isnan(w), axis=1)
    with np.errstate(all="ignore"):
        mean = np.nansum(w, axis=1) / count
    return np.where(count >= min_periods, mean, np.nan)


def _rolling_std(values: np.ndarray, pos: np.ndarray, width: int, min_periods: int) -> np.ndarray:
    w = _windows(values, pos, width)
    count = np.sum(~np.isnan(w), axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN and one-value windows
        std = np.nanstd(w, axis=1, ddof=1)
        flat = np.nanmax(w, axis=1) == np.nanmin(w, axis=1)
    std = np.where(flat, 0.0, std)  # as pandas: equal values have no spread, exactly
    return np.where((count >= max(min_periods, 2)), std, np.nan)


def _rolling_max(values: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN
        return np.nanmax(_windows(values, pos, width), axis=1)


def _lag(values: np.ndarray, pos: np.ndarray, k: int) -> np.ndarray:
    return _take(values, np.where(pos >= k, pos - k, -1))


def origin_features(frame: pd.DataFrame, target: str, step_s: int, pos: np.ndarray) -> dict:
    """What is known at each origin (its row in `frame`, -1: none), for one target
    column. Lags and windows count rows, as pandas' `shift` and `rolling` do."""
    y = frame[target].to_numpy(dtype=float)
    day = steps_per_day(step_s)
    hour = max(1, 3600 // step_s)
    short = max(2, 1800 // step_s)  # 30 min window (two steps at the least)
    now = _take(y, pos)
    load = _take(frame["load_kw"].to_numpy(dtype=float), pos)
    pv = _take(frame["pv_kw"].to_numpy(dtype=float), pos)
    net = frame["net_load_kw"].to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        share = np.clip(pv / np.maximum(load, 0.1), 0, 5)
    return {
        "y_now": now,
        "y_lag1": _lag(y, pos, 1),
        "y_lag2": _lag(y, pos, 2),
        "y_lag_hour": _lag(y, pos, hour),
        # Short-horizon signal: where the level is heading now, and how far today runs
        # above or below yesterday at this time (a level shift persists for a while).
        "y_delta1": now - _lag(y, pos, 1),
        "y_delta_hour": now - _lag(y, pos, hour),
        "y_vs_yesterday": now - _lag(y, pos, day),
        "y_mean_30min": _rolling_mean(y, pos, short, 1),
        "y_std_30min": _rolling_std(y, pos, short, 2),
        "y_mean_day": _rolling_mean(y, pos, day, day // 4),
        "y_std_day": _rolling_std(y, pos, day, day // 4),
        "renewable_share": share,
        "net_load_gradient": _take(net, pos) - _lag(net, pos, 1),
    }


def rows(
    frame: pd.DataFrame,
    target: str,
    step_s: int,
    tz: ZoneInfo,
    origins: pd.DatetimeIndex,
    horizons: list[int],
) -> pd.DataFrame:
    """One row per (origin, horizon): origin features plus the target time's calendar,
    tariff price and same-time-yesterday value (which is in the past for h <= a day).
    Rows run horizon by horizon, each over all origins."""
    day = steps_per_day(step_s)
    for h in horizons:
        if h > day:
            raise ValueError(
                f"horizon {h} steps exceeds a day ({day} steps): the model is direct up to 24 h"
            )
    y = frame[target].to_numpy(dtype=float)
    day_ns = day * step_s * 1_000_000_000
    origin_ns = _ns(origins)
    pos = _positions(frame.index, origin_ns)
    known = origin_features(frame, target, step_s, pos)
    share = envelope_share(frame.index, y, origin_ns, pos, day)
    reps = len(horizons)
    steps_ahead = np.repeat(np.asarray(horizons, dtype=np.int64), len(origins))
    at_ns = np.tile(origin_ns, reps) + steps_ahead * step_s * 1_000_000_000
    at_pos = _positions(frame.index, at_ns)
    table = {k: np.tile(v, reps) for k, v in known.items()}
    table["horizon"] = steps_ahead.astype(float)
    at = pd.DatetimeIndex(at_ns.view("M8[ns]")).tz_localize("UTC").tz_convert(origins.tz)
    table.update(calendar(at, tz))
    table["price_at_target"] = _take(frame["price_eur_per_kwh"].to_numpy(dtype=float), at_pos)
    yesterday = _take(y, _positions(frame.index, at_ns - day_ns))
    table["y_same_time_yesterday"] = yesterday
    table["y_yesterday_shifted"] = yesterday + table["y_vs_yesterday"]
    with np.errstate(all="ignore"):
        table["y_smart_persistence"] = np.tile(share, reps) * _envelope(
            frame.index, y, at_ns, day_ns
        )
    table["origin"] = at - pd.to_timedelta(steps_ahead * step_s, unit="s")
    table["time"] = at
    return pd.DataFrame(table)


def _envelope(index: pd.DatetimeIndex, y: np.ndarray, times: np.ndarray, day_ns: int) -> np.ndarray:
    """The highest value at the same time of day over the seven days before each time
    (int64 ns); NaN where none of those days is known."""
    back = np.vstack([_take(y, _positions(index, times - k * day_ns)) for k in range(1, 8)])
    highest = np.max(np.where(np.isnan(back), -np.inf, back), axis=0)
    return np.where(np.isfinite(highest), highest, np.nan)  # NaN: no day to go by


def envelope_share(
    index: pd.DatetimeIndex, y: np.ndarray, origins: np.ndarray, pos: np.ndarray, day: int
) -> np.ndarray:
    """Each origin's value as a share of its week-high envelope: for PV, the day's
    cloudiness against a clear-sky curve learned from data, which persists for hours.
    NaN where the envelope is near zero (night) or missing. Carried to a target time
    by multiplying with that time's envelope (the `y_smart_persistence` feature).
    `origins` are int64 ns, `pos` their rows in `index` (-1: none)."""
    now = _rolling_mean(y, pos, 2, 1)
    week_high = _rolling_max(y, pos, 7 * day)
    step_ns = (86_400 // day) * 1_000_000_000
    env_now = _envelope(index, y, origins, day * step_ns)
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
