"""Splitting a total forecast by each asset's typical share on same-kind days."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecasting.shares import split, typical_shares

TZ = ZoneInfo("Europe/Berlin")


def week_of_history() -> pd.DataFrame:
    """Two weeks, 15 min: 'ev' draws 10 kW on workdays only, 'base' 5 kW always."""
    index = pd.date_range("2026-05-18", periods=14 * 96, freq="900s", tz="UTC")
    workday = index.tz_convert(TZ).day_of_week < 5
    return pd.DataFrame({"ev": np.where(workday, 10.0, 0.0), "base": 5.0}, index=index)


def test_a_monday_takes_its_shares_from_workdays_not_from_sunday() -> None:
    history = week_of_history()
    monday = pd.date_range("2026-06-01 08:00", periods=4, freq="900s", tz="UTC")
    shares = typical_shares(history, monday, TZ, {"ev": 1.0, "base": 1.0})
    assert np.allclose(shares["ev"], 2 / 3) and np.allclose(shares["base"], 1 / 3)
    sunday = monday - pd.Timedelta(days=1)
    shares = typical_shares(history, sunday, TZ, {"ev": 1.0, "base": 1.0})
    assert np.allclose(shares["ev"], 0.0)


def test_only_the_past_counts_and_no_history_falls_back_to_the_weights() -> None:
    history = week_of_history()
    times = pd.date_range("2026-05-20 08:00", periods=4, freq="900s", tz="UTC")
    before = typical_shares(history, times, TZ, {"ev": 1.0, "base": 1.0})
    changed = history.copy()
    changed.loc[changed.index >= times[0], "ev"] = 1_000.0
    after = typical_shares(changed, times, TZ, {"ev": 1.0, "base": 1.0})
    assert all(np.array_equal(before[k], after[k]) for k in before)
    empty = history.iloc[:0]
    shares = typical_shares(empty, times, TZ, {"ev": 3.0, "base": 1.0})
    assert np.allclose(shares["ev"], 0.75)
    cut = split(np.array([8.0, -1.0, 4.0, 0.0]), shares)
    assert cut["ev"] == [6.0, 0.0, 3.0, 0.0] and cut["base"] == [2.0, 0.0, 1.0, 0.0]
