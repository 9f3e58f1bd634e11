"""Rolling-origin backtest: the model against persistence and seasonal naive, per horizon.

At each origin in the test window, every method forecasts the next steps from what
was known then; errors are pooled per horizon. The model's band is recalibrated at
the start of each test day on its own forecasts so far, as the live service does.
Metrics: MAE, RMSE, WAPE, pinball loss (P10/P50/P90, model only) and the share of
outcomes inside P10-P90.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import BaseModel

from forecasting.features import TARGET_COLUMN, rows, steps_per_day
from forecasting.models import MAX_ROWS, QUANTILES, Trained, predict_rows, recent_band_scale


class HorizonScore(BaseModel):
    horizon_steps: int
    mae_model: float
    mae_persistence: float
    mae_seasonal_naive: float
    rmse_model: float
    wape_model: float
    pinball_model: float
    coverage_p10_p90: float
    skill_vs_seasonal: float  # 1 - MAE_model / MAE_seasonal_naive (> 0: model better)
    skill_vs_persistence: float


def pinball(y: np.ndarray, q: np.ndarray) -> float:
    losses = []
    for j, alpha in enumerate(QUANTILES):
        diff = y - q[:, j]
        losses.append(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))
    return float(np.mean(losses))


def backtest(
    trained: Trained,
    frame: pd.DataFrame,
    test_start: pd.Timestamp,
    test_end: pd.Timestamp,
    tz: ZoneInfo,
    horizons: list[int],
    origin_every: int = 4,
) -> list[HorizonScore]:
    """Score on origins in [test_start, test_end); the frame must hold a day of history
    before test_start and the horizon after test_end."""
    column = TARGET_COLUMN[trained.target]
    step_s = trained.step_s
    day = steps_per_day(step_s)
    step = pd.Timedelta(seconds=step_s)
    origins = frame.index[(frame.index >= test_start) & (frame.index < test_end)][::origin_every]
    # Outcomes after an origin stay hidden from its band: each day's factor is found
    # on the frame as it stood at that day's first origin.
    days = pd.Series(origins.floor("D"), index=origins)
    factor_of_day = {
        day: recent_band_scale(trained, frame[frame.index <= first], first, tz)[0]
        for day, first in days.groupby(days).apply(lambda s: s.index[0]).items()
    }
    scores = []
    for h in horizons:
        table = rows(frame, column, step_s, tz, pd.DatetimeIndex(origins), [h])
        truth = frame[column].reindex(pd.DatetimeIndex(table["time"])).to_numpy()
        persistence = table["y_now"].to_numpy()
        seasonal = frame[column].reindex(pd.DatetimeIndex(table["time"]) - day * step).to_numpy()
        keep = ~(np.isnan(truth) | np.isnan(persistence) | np.isnan(seasonal))
        table, truth = table[keep], truth[keep]
        persistence, seasonal = persistence[keep], seasonal[keep]
        factors = pd.DatetimeIndex(table["origin"]).floor("D").map(factor_of_day).to_numpy()
        q = np.vstack(
            [
                predict_rows(trained, table.iloc[i : i + MAX_ROWS], factors[i : i + MAX_ROWS])
                for i in range(0, len(table), MAX_ROWS)
            ]
        )
        mid = q[:, 1]
        mae = float(np.mean(np.abs(truth - mid)))
        mae_p = float(np.mean(np.abs(truth - persistence)))
        mae_s = float(np.mean(np.abs(truth - seasonal)))
        scores.append(
            HorizonScore(
                horizon_steps=h,
                mae_model=mae,
                mae_persistence=mae_p,
                mae_seasonal_naive=mae_s,
                rmse_model=float(np.sqrt(np.mean((truth - mid) ** 2))),
                wape_model=float(np.sum(np.abs(truth - mid)) / max(np.sum(np.abs(truth)), 1e-9)),
                pinball_model=pinball(truth, q),
                coverage_p10_p90=float(np.mean((truth >= q[:, 0]) & (truth <= q[:, 2]))),
                skill_vs_seasonal=1 - mae / mae_s if mae_s > 0 else 0.0,
                skill_vs_persistence=1 - mae / mae_p if mae_p > 0 else 0.0,
            )
        )
    return scores
