"""The numpy feature rows against the pandas formulation they replaced (reindex, shift,
rolling), on frames with gaps, missing rows, a frame's first week and both targets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forecasting.features import rows
from forecasting.service import frame_from_profiles
from grid.config import load_site
from grid.profiles import generate

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
TZ = SITE.site.tz
FRAME = frame_from_profiles(generate(SITE, datetime(2026, 3, 20, tzinfo=UTC), 96 * 12, seed=7))


def reference_rows(frame, target, step_s, tz: ZoneInfo, origins, horizons) -> pd.DataFrame:
    """The pandas implementation `forecasting.features.rows` had before it went numpy."""
    y = frame[target]
    day = 86_400 // step_s
    hour = max(1, 3600 // step_s)
    short = max(2, 1800 // step_s)
    known = pd.DataFrame(
        {
            "y_now": y,
            "y_lag1": y.shift(1),
            "y_lag2": y.shift(2),
            "y_lag_hour": y.shift(hour),
            "y_delta1": y.diff(1),
            "y_delta_hour": y - y.shift(hour),
            "y_vs_yesterday": y - y.shift(day),
            "y_mean_30min": y.rolling(short, min_periods=1).mean(),
            "y_std_30min": y.rolling(short, min_periods=2).std(),
            "y_mean_day": y.rolling(day, min_periods=day // 4).mean(),
            "y_std_day": y.rolling(day, min_periods=day // 4).std(),
            "renewable_share": (frame["pv_kw"] / frame["load_kw"].clip(lower=0.1)).clip(0, 5),
            "net_load_gradient": frame["net_load_kw"].diff(),
        },
        index=frame.index,
    )
    step = pd.Timedelta(seconds=step_s)

    def envelope(times):
        back = np.vstack([y.reindex(times - k * day * step).to_numpy() for k in range(1, 8)])
        highest = np.max(np.where(np.isnan(back), -np.inf, back), axis=0)
        return np.where(np.isfinite(highest), highest, np.nan)

    now = y.rolling(2, min_periods=1).mean().reindex(origins).to_numpy()
    week_high = y.rolling(7 * day, min_periods=1).max().reindex(origins).to_numpy()
    env_now = envelope(origins)
    with np.errstate(all="ignore"):
        lit = env_now > np.maximum(0.05 * week_high, 1e-6)
        share = np.where(lit, np.clip(now / env_now, 0.0, 1.5), np.nan)
    n, reps = len(origins), len(horizons)
    steps_ahead = np.repeat(np.asarray(horizons, dtype=np.int64), n)
    origin_of = pd.DatetimeIndex(np.tile(origins.to_numpy(), reps), tz=origins.tz)
    at = origin_of + pd.to_timedelta(steps_ahead * step_s, unit="s")
    part = known.reindex(origins).iloc[np.tile(np.arange(n), reps)].reset_index(drop=True)
    part["horizon"] = steps_ahead.astype(float)
    local = at.tz_convert(tz)
    hour_of_day = local.hour + local.minute / 60
    dow = local.day_of_week
    part["hour_sin"] = np.sin(2 * np.pi * hour_of_day / 24)
    part["hour_cos"] = np.cos(2 * np.pi * hour_of_day / 24)
    part["dow_sin"] = np.sin(2 * np.pi * dow / 7)
    part["dow_cos"] = np.cos(2 * np.pi * dow / 7)
    part["weekend"] = (dow >= 5).astype(float)
    part["price_at_target"] = frame["price_eur_per_kwh"].reindex(at).to_numpy()
    part["y_same_time_yesterday"] = y.reindex(at - day * step).to_numpy()
    part["y_yesterday_shifted"] = part["y_same_time_yesterday"] + part["y_vs_yesterday"]
    with np.errstate(all="ignore"):
        part["y_smart_persistence"] = np.tile(share, reps) * envelope(at)
    part["origin"] = origin_of
    part["time"] = at
    return part


def with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored telemetry is not perfect: NaN runs (a day without PV readings, hours of
    nothing), steps with no row at all, and a flat stretch (a meter stuck)."""
    out = frame.copy()
    out.iloc[300:340, out.columns.get_loc("load_kw")] = np.nan
    out.iloc[500:596, out.columns.get_loc("pv_kw")] = np.nan
    out.iloc[700:760, out.columns.get_loc("load_kw")] = 12.5
    out["net_load_kw"] = out["load_kw"] - out["pv_kw"]
    return out.drop(out.index[[50, 51, 52, 900]])


@pytest.mark.parametrize("frame", [FRAME, with_gaps(FRAME)], ids=["clean", "gaps"])
@pytest.mark.parametrize("target", ["load_kw", "pv_kw", "net_load_change_30min"])
def test_numpy_rows_match_the_pandas_formulation(frame: pd.DataFrame, target: str) -> None:
    # every origin, including the first rows (short windows) and ones not in the frame
    origins = pd.date_range(FRAME.index[0], FRAME.index[-1], freq="900s")
    horizons = [1, 2, 4, 17, 96]
    mine = rows(frame, target, 900, TZ, origins, horizons)
    theirs = reference_rows(frame, target, 900, TZ, origins, horizons)
    assert list(mine.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, rtol=1e-9, atol=1e-9)


def test_one_origin_matches_and_origins_outside_the_frame_are_empty() -> None:
    origins = pd.DatetimeIndex([FRAME.index[-1], FRAME.index[-1] + pd.Timedelta(hours=5)])
    mine = rows(FRAME, "load_kw", 900, TZ, origins, list(range(1, 97)))
    theirs = reference_rows(FRAME, "load_kw", 900, TZ, origins, list(range(1, 97)))
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, rtol=1e-9, atol=1e-9)
    assert mine[mine["origin"] == origins[1]]["y_now"].isna().all()
