"""Splitting a site-total forecast over the assets that make it up.

The models forecast site totals; a plan wants each load and PV array. Each asset gets
its typical share of the total at the same local time on recent days of the same
kind (workday or weekend): an EV charger busy on weekday mornings keeps that share
on a Monday even though Sunday's was nil.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

LOOK_BACK_DAYS = 21


def _workday(times: pd.DatetimeIndex, tz: ZoneInfo) -> np.ndarray:
    return np.asarray(times.tz_convert(tz).day_of_week < 5)


def typical_shares(
    history: pd.DataFrame,
    times: pd.DatetimeIndex,
    tz: ZoneInfo,
    fallback: dict[str, float],
    days: int = 3,
) -> dict[str, np.ndarray]:
    """Per column of `history` (one per asset, on the step grid), its share of the row
    total at each of `times`: the mean over the last `days` same-kind days before
    `times[0]`. Where history says nothing (no days found, or a total of zero, as PV at
    night), the shares are `fallback` (weights, e.g. nominal power)."""
    columns = list(history.columns)
    known_until = times[0]
    day = pd.Timedelta(days=1)
    kind = _workday(times, tz)
    sums = np.zeros((len(times), len(columns)))
    found = np.zeros(len(times))
    for k in range(1, LOOK_BACK_DAYS + 1):
        back = times - k * day
        values = history.reindex(back).to_numpy(dtype=float)
        use = (
            (found < days)
            & (_workday(back, tz) == kind)
            & np.asarray(back < known_until)
            & ~np.isnan(values).any(axis=1)
        )
        sums[use] += values[use]
        found += use
    weights = np.array([fallback.get(c, 0.0) for c in columns], dtype=float)
    weights = (
        weights / weights.sum() if weights.sum() > 0 else np.full(len(columns), 1 / len(columns))
    )
    totals = sums.sum(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        shares = np.where(totals > 1e-9, sums / totals, weights)
    return {c: shares[:, i] for i, c in enumerate(columns)}


def split(total: np.ndarray, shares: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """A total forecast cut into per-asset forecasts, none below zero."""
    clipped = np.clip(np.asarray(total, dtype=float), 0.0, None)
    return {k: [float(v) for v in clipped * s] for k, s in shares.items()}
