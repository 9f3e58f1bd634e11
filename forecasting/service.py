"""The forecast other rooms ask for: a model when one is trained and there is history
enough for its features, otherwise an honest naive method that says so.

Calls are cached per store (`_Cache`): the history read once is kept, and a later
call reads again only what its counts do not cover: at least the two steps before the
last complete one (late arrivals), at most RECOUNT_STEPS more. Before trusting the
rest, it counts the stored samples of each series there (one small query each): a
backfill or a replayed spool changes the count and everything is read again, as it is
after REREAD_AFTER_S anyway. The counted span moves on only every RECOUNT_STEPS steps,
so most calls count without recounting. A call for the same
target, origin and horizon with no new data returns the forecast already made.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import registry
from forecasting.features import TARGET_COLUMN, steps_per_day, with_derived
from forecasting.models import Trained, predict, recent_band_scale
from forecasting.registry import ModelMeta
from forecasting.schema import Forecast, Target
from grid.config import SiteConfig
from grid.profiles import SiteProfiles
from grid.store import Store
from grid.tariff import prices_eur_per_kwh

HISTORY_DAYS = 8
REREAD_AFTER_S = 3600.0  # wall time after which cached history is read again in full
LATE_STEPS = 2  # steps before the last complete one read again each call
RECOUNT_STEPS = 4  # the counted span moves on in these strides; the rest is read again


def _grid(start: datetime, end: datetime, step_s: int) -> pd.DatetimeIndex:
    first = pd.Timestamp(start).floor(f"{step_s}s")
    return pd.date_range(first, pd.Timestamp(end), freq=f"{step_s}s", inclusive="left")


def history_frame(site: SiteConfig, store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Stored telemetry resampled to the site's step (means), one column per series:
    load_kw (sum of loads), pv_kw (sum of PV), price_eur_per_kwh (the tariff's, filled
    for steps with no stored price), plus derived net load and its 30-min change."""
    return with_derived(_read(site, store, start, end), site.site.step_s)


def _read(site: SiteConfig, store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    step_s = site.site.step_s
    index = _grid(start, end, step_s)

    def total(assets: list[str]) -> np.ndarray:
        if not assets:
            return np.zeros(len(index))
        each = np.vstack([_values(site, store, a, "power_kw", start, end, index) for a in assets])
        # a step where no asset stored anything stays unknown (NaN), not zero
        return np.where(np.isnan(each).all(axis=0), np.nan, np.nansum(each, axis=0))

    stored = _values(site, store, "tariff", "import_price_eur_per_kwh", start, end, index)
    missing = np.flatnonzero(np.isnan(stored))
    if len(missing):
        times = list(index[missing].to_pydatetime())
        stored[missing] = [p[0] for p in prices_eur_per_kwh(site, times)]
    return pd.DataFrame(
        {
            "load_kw": total([ld.id for ld in site.assets.loads]),
            "pv_kw": total([p.id for p in site.assets.pv]),
            "price_eur_per_kwh": stored,
        },
        index=index,
    )


@dataclass
class _Cache:
    """One store's history for one site, as read so far, and the forecasts made on it."""

    raw: pd.DataFrame  # `_read` columns on the step grid
    complete_until: pd.Timestamp  # rows before it were complete steps when read
    read_at: float  # time.monotonic() of the last full read
    counted_until: pd.Timestamp  # `counts` are of the samples stored before it
    counts: tuple[int, ...]
    made: dict[tuple, Forecast] = field(default_factory=dict)


# one bucket for any span a cache holds (aligned to the epoch: 1e9 s is ~31 years)
_ONE_BUCKET_S = 1_000_000_000


def _counts(site: SiteConfig, store: Store, start: datetime, end: datetime) -> tuple[int, ...]:
    """How many samples each series `_read` uses has stored in [start, end)."""
    series = [(ld.id, "power_kw") for ld in site.assets.loads]
    series += [(p.id, "power_kw") for p in site.assets.pv]
    series.append(("tariff", "import_price_eur_per_kwh"))
    return tuple(
        int(
            sum(
                sample.value
                for sample in store.query(
                    site.site.name,
                    asset,
                    quantity,
                    start,
                    end,
                    window_s=_ONE_BUCKET_S,
                    aggregate="count",
                )
            )
        )
        for asset, quantity in series
    )


_CACHES: weakref.WeakKeyDictionary[Store, dict[tuple[str, int], _Cache]] = (
    weakref.WeakKeyDictionary()
)


def _cached_history(
    site: SiteConfig, store: Store, start: pd.Timestamp, end: pd.Timestamp, origin: pd.Timestamp
) -> tuple[pd.DataFrame, _Cache]:
    step = pd.Timedelta(seconds=site.site.step_s)
    caches = _CACHES.setdefault(store, {})
    key = (site.site.name, site.site.step_s)
    cache = caches.get(key)
    first = cache.raw.index[0] if cache is not None else start
    if (
        cache is None
        or start < first
        or time.monotonic() - cache.read_at > REREAD_AFTER_S
        or _counts(site, store, first, cache.counted_until) != cache.counts
    ):
        raw = _read(site, store, start.to_pydatetime(), end.to_pydatetime())
        until = origin + step - LATE_STEPS * step
        counts = _counts(site, store, start.to_pydatetime(), until.to_pydatetime())
        cache = caches[key] = _Cache(raw, origin + step, time.monotonic(), until, counts)
    else:
        # everything after the counted span is read again: it is what the counts vouch
        # for that need not be
        since = max(start, min(cache.counted_until, origin + step - LATE_STEPS * step))
        tail = _read(site, store, since.to_pydatetime(), end.to_pydatetime())
        before = cache.raw.reindex(tail.index)
        # what a forecast at `origin` reads: history up to it, prices all along
        past = tail.index <= origin
        price = "price_eur_per_kwh"
        if not (tail[past].equals(before[past]) and tail[price].equals(before[price])):
            cache.made.clear()
        head = cache.raw[cache.raw.index < tail.index[0]]
        cache.raw = pd.concat([head, tail])
        cache.complete_until = max(cache.complete_until, origin + step)
        until = cache.complete_until - LATE_STEPS * step
        if until - cache.counted_until >= RECOUNT_STEPS * step:
            cache.counts = _counts(site, store, first, until)
            cache.counted_until = until
    cache.made = {k: v for k, v in cache.made.items() if k[1] == origin}
    return cache.raw[(cache.raw.index >= start) & (cache.raw.index < end)], cache


def _values(
    site: SiteConfig,
    store: Store,
    asset: str,
    quantity: str,
    start: datetime,
    end: datetime,
    index: pd.DatetimeIndex,
) -> np.ndarray:
    """One series' stored step means on the grid `index` (NaN where nothing was stored):
    numpy positions, as a pandas Series and reindex per series cost more than the query."""
    step_s = site.site.step_s
    out = np.full(len(index), np.nan)
    if len(index) == 0:
        return out
    samples = store.query(site.site.name, asset, quantity, start, end, window_s=step_s)
    if not samples:
        return out
    step_ns = step_s * 1_000_000_000
    offset = pd.DatetimeIndex([s.time for s in samples]).as_unit("ns").asi8
    offset = offset - index[:1].as_unit("ns").asi8[0]
    pos = offset // step_ns
    keep = (offset % step_ns == 0) & (pos >= 0) & (pos < len(index))
    out[pos[keep]] = np.array([s.value for s in samples], dtype=float)[keep]
    return out


def asset_history(
    site: SiteConfig, store: Store, assets: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Each asset's stored power (step means, NaN where nothing was stored), a column each."""
    index = _grid(start, end, site.site.step_s)
    return pd.DataFrame(
        {a: _values(site, store, a, "power_kw", start, end, index) for a in assets}, index=index
    )


def frame_from_profiles(profiles: SiteProfiles) -> pd.DataFrame:
    """The same frame, from the synthetic profiles (training data, benchmarks)."""
    index = pd.DatetimeIndex(profiles.times)
    frame = pd.DataFrame(
        {
            "load_kw": profiles.total_load_kw,
            "pv_kw": profiles.total_pv_kw,
            "price_eur_per_kwh": profiles.import_price_eur_per_kwh,
        },
        index=index,
    )
    return with_derived(frame, profiles.step_s)


def seasonal_naive(y: pd.Series, future: pd.DatetimeIndex, step_s: int) -> np.ndarray | None:
    """Same time yesterday, for each future step; None when that day is missing."""
    back = future - pd.Timedelta(days=1)
    values = y.reindex(back).to_numpy(dtype=float)
    return None if np.isnan(values).mean() > 0.25 else np.nan_to_num(values, nan=np.nanmean(values))


def forecast(
    site: SiteConfig,
    store: Store,
    now: datetime,
    target: Target,
    horizon_steps: int,
    registry_dir: Path | None = None,
) -> Forecast:
    step_s = site.site.step_s
    day = steps_per_day(step_s)
    if target not in TARGET_COLUMN:
        raise ValueError(f"target {target!r}: one of {', '.join(TARGET_COLUMN)}")
    if not 1 <= horizon_steps <= day:
        raise ValueError(
            f"horizon_steps = {horizon_steps} must be within [1, {day}] "
            f"({step_s} s steps: at most 24 h)"
        )
    # The origin is the last complete step; the forecast covers the step in progress
    # (which is where a plan made now starts) and those after it.
    origin = pd.Timestamp(now).floor(f"{step_s}s") - pd.Timedelta(seconds=step_s)
    start = origin - pd.Timedelta(days=HISTORY_DAYS)
    end = origin + pd.Timedelta(seconds=(horizon_steps + 1) * step_s)
    raw, cache = _cached_history(site, store, start, end, origin)
    loaded = registry.load(registry_dir, target) if registry_dir is not None else None
    version = loaded[1].version if loaded else None
    made_key = (target, origin, horizon_steps, registry_dir, version)
    if made_key in cache.made:
        return cache.made[made_key].model_copy()
    # the future rows keep only what is known ahead: the tariff price (the derived
    # net load and its change follow the blanked load and PV)
    future = raw.index > origin
    blanked = {c: raw[c].to_numpy(dtype=float, copy=True) for c in raw.columns}
    for column, values in blanked.items():
        if column != "price_eur_per_kwh":
            values[future] = np.nan
    frame = with_derived(pd.DataFrame(blanked, index=raw.index), step_s)
    made = _forecast(site, frame, origin, target, horizon_steps, loaded)
    cache.made[made_key] = made
    return made.model_copy()


def _forecast(
    site: SiteConfig,
    frame: pd.DataFrame,
    origin: pd.Timestamp,
    target: Target,
    horizon_steps: int,
    loaded: tuple[Trained, ModelMeta] | None,
) -> Forecast:
    step_s = site.site.step_s
    day = steps_per_day(step_s)
    future = pd.date_range(
        origin + pd.Timedelta(seconds=step_s), periods=horizon_steps, freq=f"{step_s}s"
    )
    column = TARGET_COLUMN[target]
    y = frame[column]
    unit = "EUR/kWh" if target == "price" else "kW"

    def result(p10, p50, p90, method, version, note) -> Forecast:
        return Forecast(
            target=target,
            unit=unit,
            times=list(future.to_pydatetime()),
            p10=[round(float(v), 4) for v in p10],
            p50=[round(float(v), 4) for v in p50],
            p90=[round(float(v), 4) for v in p90],
            method=method,
            model_version=version,
            note=note,
        )

    history = y[y.index <= origin].dropna()
    if loaded is not None and len(history) >= day and not np.isnan(y.get(origin, np.nan)):
        trained, meta = loaded
        scale, scored = recent_band_scale(trained, frame, origin, site.site.tz)
        q = predict(trained, frame, origin, horizon_steps, site.site.tz, band_scale=scale)
        band = (
            f"; P10-P90 band recalibrated on {scored} of its forecasts since then" if scored else ""
        )
        return result(
            q[:, 0],
            q[:, 1],
            q[:, 2],
            "xgboost",
            meta.version,
            f"XGBoost quantile model {meta.version} trained on "
            f"{meta.train_start:%Y-%m-%d}..{meta.train_end:%Y-%m-%d}{band}",
        )
    why = "no trained model" if loaded is None else "less than a day of history for its features"
    naive = seasonal_naive(y, future, step_s)
    if naive is not None:
        spread = _residual_spread(y, day)
        return result(
            naive - spread,
            naive,
            naive + spread,
            "seasonal_naive",
            None,
            f"{why}: seasonal naive (same time yesterday), band from day-to-day differences",
        )
    last = float(history.iloc[-1]) if len(history) else 0.0
    flat = np.full(horizon_steps, last)
    note = (
        f"{why} and under a day of history: persistence (last value)"
        if len(history)
        else "no history at all: zeros; nothing is known about this site yet"
    )
    return result(flat, flat, flat, "persistence", None, note)


def _residual_spread(y: pd.Series, day: int) -> float:
    """Half the width of an ~80 % band for seasonal naive, from its past errors."""
    errors = (y - y.shift(day)).dropna()
    if len(errors) < 8:
        return 0.0
    return float(np.quantile(np.abs(errors), 0.8))
