"""XGBoost forecasters: one quantile model per target, direct multi-horizon.

Direct multi-horizon: a single model per target sees the horizon (in steps) as a
feature, with the origin's state and the target time's calendar, and predicts the
target at that time directly, with no recursion on its own predictions. One model
(`reg:quantileerror` with alphas 0.1/0.5/0.9) gives P10, P50 and P90 together;
they can cross on a few rows, so each row is sorted.

Quantile trees tend to give bands too narrow for data they have not seen, so blocks
spread over the training window are held out to calibrate them: the band around
P50 is scaled by the factor that makes 80 % of held-out outcomes fall inside it
(split conformal calibration), and that factor travels with the model, with one
per horizon. On the same blocks, where persistence alone beat the model at a horizon
(PV at 15 min, the last value being hard to beat), the P50 is blended with it by the
weight that did best there; the band moves with the P50 and is calibrated after the
blend, and load and PV quantiles are clipped at zero.

A site's weather moves on after training, so once the model has made forecasts past
its training window, `recent_band_scale` re-derives the factor from how those
forecasts did over the last week (rolling conformal calibration), shrunk towards the
trained factor while they are few: one multiplier on the per-horizon factors, found
on the served bands, since those recent forecasts are mostly short-horizon ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sklearn.base import clone
from xgboost import XGBRegressor

from forecasting.features import FEATURES, TARGET_COLUMN, rows, steps_per_day

QUANTILES = (0.1, 0.5, 0.9)
MAX_ROWS = 1_000  # one inference call; larger batches are refused with a clear error
TRAIN_HORIZONS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96)


@dataclass
class Trained:
    target: str
    step_s: int
    model: XGBRegressor
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    rows: int
    band_scale: float = 1.0  # conformal factor on the P10-P90 band (see module doc)
    # The same factor per horizon (steps ahead): errors grow with the horizon, so one
    # factor for all makes the band too wide at 15 min and too narrow at 24 h.
    band_scale_by_horizon: dict[int, float] = field(default_factory=dict)
    # The weight of the model's P50 against persistence per horizon, chosen on the
    # held-out blocks (1: the model alone): at the shortest horizons the last value is
    # hard to beat, and a blend never does worse there than the better of the two.
    model_weight_by_horizon: dict[int, float] = field(default_factory=dict)


def horizons_for(step_s: int) -> list[int]:
    day = steps_per_day(step_s)
    return sorted({h for h in TRAIN_HORIZONS if h <= day} | {day})


def training_rows(
    frame: pd.DataFrame, target: str, step_s: int, tz: ZoneInfo, origin_every: int = 2
) -> pd.DataFrame:
    column = TARGET_COLUMN[target]
    day = steps_per_day(step_s)
    usable = frame.index[day:]  # a day of history before the first origin
    origins = pd.DatetimeIndex(usable[::origin_every])
    table = rows(frame, column, step_s, tz, origins, horizons_for(step_s))
    table["y"] = frame[column].reindex(pd.DatetimeIndex(table["time"])).to_numpy()
    return table.dropna(subset=["y"])


def train(
    frame: pd.DataFrame,
    target: str,
    step_s: int,
    tz: ZoneInfo,
    n_estimators: int = 300,
    seed: int = 0,
) -> Trained:
    if target not in TARGET_COLUMN:
        raise ValueError(f"target {target!r}: one of {', '.join(TARGET_COLUMN)}")
    table = training_rows(frame, target, step_s, tz)
    if len(table) < 200:
        raise ValueError(
            f"too little history to train {target}: {len(table)} rows "
            f"(need two days or more at {step_s} s steps)"
        )
    model = XGBRegressor(
        objective="reg:quantileerror",
        quantile_alpha=np.array(QUANTILES),
        n_estimators=n_estimators,
        max_depth=6,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.9,
        n_jobs=2,
        random_state=seed,
        tree_method="hist",
    )
    # One 3-day block in every 15 days is held out for calibration: spread over the
    # window, so one unusual fortnight at its end does not set the band for everything
    # after it, and in blocks, so neighbouring hours do not make the held-out errors
    # look smaller than unseen data's.
    held_out = (pd.DatetimeIndex(table["origin"]).day_of_year // 3) % 5 == 0
    fit, held = table[~held_out], table[held_out]
    model.fit(fit[FEATURES], fit["y"])
    trained = Trained(
        target=target,
        step_s=step_s,
        model=model,
        train_start=frame.index[0],
        train_end=frame.index[-1],
        rows=len(table),
    )
    if len(held) >= 50:
        raw = _raw_batches(model, held)
        trained.model_weight_by_horizon = choose_model_weights(raw, held)
        # the band is calibrated on the forecast as it will be served: blended, clipped
        q = _served(trained, held, raw)
        y = held["y"].to_numpy()
        trained.band_scale = _band_factor(q, y)
        trained.band_scale_by_horizon = calibrate_by_horizon(q, y, held["horizon"].to_numpy())
    # The model that serves is refitted on every row (the held-out days are the most
    # recent ones too often to leave out); it keeps the weights and factors found above.
    trained.model = clone(model).fit(table[FEATURES], table["y"])
    return trained


WEIGHTS = np.linspace(0.0, 1.0, 11)
NON_NEGATIVE = ("load", "pv")  # targets whose quantiles are clipped at zero
ZERO_KW = 0.005  # below this a non-negative target's quantile is taken as exactly zero


def choose_model_weights(raw: np.ndarray, held: pd.DataFrame) -> dict[int, float]:
    """Per horizon, the weight on the model's P50 against persistence (y_now) with the
    least held-out MAE, where persistence alone beat the model there by more than twice
    the standard error of the paired difference; elsewhere, and where the held-out rows
    are too few, the model alone. (A blend chosen on any lead followed the noise of a
    few hundred held-out rows and lost on unseen data: CityLearn load at 1 h.)"""
    y = held["y"].to_numpy()
    now = held["y_now"].to_numpy()
    horizons = held["horizon"].to_numpy()
    out = {}
    for h in np.unique(horizons):
        mask = (horizons == h) & ~np.isnan(now)
        if mask.sum() < 30:
            continue
        mid, last, truth = raw[mask, 1], now[mask], y[mask]
        mae = [np.mean(np.abs(truth - (w * mid + (1 - w) * last))) for w in WEIGHTS]
        lead = np.abs(truth - mid) - np.abs(truth - last)  # > 0: persistence was closer
        clear = lead.mean() > 2 * lead.std(ddof=1) / np.sqrt(len(lead))
        out[int(h)] = float(WEIGHTS[int(np.argmin(mae))]) if clear else 1.0
    return out


def calibrate_by_horizon(
    q: np.ndarray, y: np.ndarray, horizons: np.ndarray, coverage: float = 0.8
) -> dict[int, float]:
    """The band factor per horizon, where the held-out rows of that horizon are enough."""
    out = {}
    for h in np.unique(horizons):
        mask = horizons == h
        if mask.sum() >= 30:
            out[int(h)] = _band_factor(q[mask], y[mask], coverage)
    return out


def _per_row(per: dict[int, float], horizons: np.ndarray, default: float) -> np.ndarray:
    """Each row's value from a per-horizon table, interpolated between the horizons it
    holds (the model trains on a subset of them); `default` where it holds none."""
    if not per:
        return np.full(len(horizons), float(default))
    keys = sorted(per)
    return np.interp(horizons, keys, [per[k] for k in keys])


def row_band_scale(trained: Trained, table: pd.DataFrame) -> np.ndarray:
    """Each row's factor: its horizon's own, or the overall one where it has none."""
    return _per_row(trained.band_scale_by_horizon, table["horizon"].to_numpy(), trained.band_scale)


def _served(trained: Trained, table: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    """Raw quantiles as served before the band factor: the whole band moved by the
    blend of its P50 with persistence."""
    w = _per_row(trained.model_weight_by_horizon, table["horizon"].to_numpy(), 1.0)
    now = table["y_now"].to_numpy()
    shift = np.where(np.isnan(now), 0.0, (1 - w) * (np.nan_to_num(now) - raw[:, 1]))
    q = raw + shift[:, None]
    if trained.target in NON_NEGATIVE:
        # PV at night is exactly 0, and a tree never says exactly 0: a band of
        # [0.0001, 0.0003] missed every night hour, and calibrating on those misses
        # set the daytime band by them (CityLearn PV: 8 % of night hours covered).
        q = np.where(q < ZERO_KW, 0.0, q)
    return q


def _band_factor(q: np.ndarray, y: np.ndarray, coverage: float = 0.8) -> float:
    upper = np.maximum(q[:, 2] - q[:, 1], 1e-6)
    lower = np.maximum(q[:, 1] - q[:, 0], 1e-6)
    ratio = np.where(y >= q[:, 1], (y - q[:, 1]) / upper, (q[:, 1] - y) / lower)
    return float(np.clip(np.quantile(ratio, coverage), 0.5, 10.0))


RECENT_DAYS = 7
PRIOR_ROWS = 200  # recent forecasts it takes to outweigh the trained factor


def recent_band_scale(
    trained: Trained, frame: pd.DataFrame, origin: pd.Timestamp, tz: ZoneInfo
) -> tuple[float, int]:
    """The band factor from the model's own forecasts issued after its training window
    and within the last RECENT_DAYS, scored on the outcomes known at `origin`; shrunk
    towards the trained factor by PRIOR_ROWS. Returns (factor, forecasts scored)."""
    since = max(trained.train_end, origin - pd.Timedelta(days=RECENT_DAYS))
    origins = frame.index[(frame.index > since) & (frame.index < origin)]
    origins = origins[:: max(1, steps_per_day(trained.step_s) // 48)]  # every 30 min at most
    if len(origins) == 0:
        return trained.band_scale, 0
    table = rows(
        frame,
        TARGET_COLUMN[trained.target],
        trained.step_s,
        tz,
        pd.DatetimeIndex(origins),
        horizons_for(trained.step_s),
    )
    table = table[pd.DatetimeIndex(table["time"]) <= origin]
    y = frame[TARGET_COLUMN[trained.target]].reindex(pd.DatetimeIndex(table["time"])).to_numpy()
    known = ~np.isnan(y) & ~np.isnan(table["y_now"].to_numpy())
    table, y = table[known], y[known]
    n = len(table)
    if n < 20:
        return trained.band_scale, n
    # How far off the served band (with its per-horizon factors) ran lately, as one
    # multiplier on all of them: the recent forecasts are mostly short-horizon ones, so
    # a factor learnt on them alone would set every horizon's band to theirs.
    q = np.vstack(
        [
            _scaled(
                trained,
                table.iloc[i : i + MAX_ROWS],
                _raw(trained.model, table.iloc[i : i + MAX_ROWS]),
            )
            for i in range(0, n, MAX_ROWS)
        ]
    )
    recent = _band_factor(q, y) * trained.band_scale
    return (n * recent + PRIOR_ROWS * trained.band_scale) / (n + PRIOR_ROWS), n


def _raw(model: XGBRegressor, table: pd.DataFrame) -> np.ndarray:
    """Raw quantiles, each row sorted: the booster straight on a float32 array
    (`inplace_predict`), skipping the scikit-learn wrapper's per-call checks.

    On one thread: a forecast is at most a thousand rows, and handing them to a second
    thread cost more than it saved (one row 1.5 ms against 70 ms, a thousand 42 ms
    against 100 ms, on a busy 2-core machine). Always the same value, so concurrent
    callers of one cached booster set nothing that conflicts."""
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    x = np.ascontiguousarray(table[FEATURES].to_numpy(dtype=np.float32))
    out = np.asarray(booster.inplace_predict(x), dtype=float).reshape(len(table), -1)
    return np.sort(out, axis=1)


def _raw_batches(model: XGBRegressor, table: pd.DataFrame) -> np.ndarray:
    return np.vstack(
        [_raw(model, table.iloc[i : i + MAX_ROWS]) for i in range(0, len(table), MAX_ROWS)]
    )


def predict_rows(
    trained: Trained, table: pd.DataFrame, band_scale: float | np.ndarray | None = None
) -> np.ndarray:
    """(n, 3) calibrated, ordered quantiles for at most MAX_ROWS rows. Each row's band
    gets its horizon's factor; `band_scale` (one factor, or one per row: a recent
    re-calibration of the overall factor) moves them all by its ratio to the trained one."""
    if len(table) > MAX_ROWS:
        raise ValueError(
            f"{len(table)} rows in one inference call; the limit is {MAX_ROWS}: split the batch"
        )
    k = None
    if band_scale is not None and trained.band_scale > 0:
        k = np.asarray(band_scale) / trained.band_scale
    return _scaled(trained, table, _raw(trained.model, table), k)


def _scaled(
    trained: Trained, table: pd.DataFrame, raw: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """The served quantiles: blended with persistence, each row's band scaled by its
    horizon's factor (times `extra`), clipped at zero for a non-negative target."""
    q = _served(trained, table, raw)
    mid = q[:, 1]
    k = row_band_scale(trained, table)
    if extra is not None:
        k = k * extra
    out = np.column_stack([mid - k * (mid - q[:, 0]), mid, mid + k * (q[:, 2] - mid)])
    return np.maximum(out, 0.0) if trained.target in NON_NEGATIVE else out


def predict(
    trained: Trained,
    frame: pd.DataFrame,
    origin: pd.Timestamp,
    horizon_steps: int,
    tz: ZoneInfo,
    band_scale: float | None = None,
) -> np.ndarray:
    """Quantiles for steps 1..horizon_steps after `origin`, shape (horizon_steps, 3)."""
    table = rows(
        frame,
        TARGET_COLUMN[trained.target],
        trained.step_s,
        tz,
        pd.DatetimeIndex([origin]),
        list(range(1, horizon_steps + 1)),
    )
    return predict_rows(trained, table, band_scale)
