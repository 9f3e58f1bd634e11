"""Features without leakage, a model that beats the naive baselines, ordered quantiles,
the registry round trip, and the forecast service's fallbacks over real stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import registry
from forecasting.backtest import backtest
from forecasting.features import FEATURES, TARGET_COLUMN, rows, with_derived
from forecasting.models import (
    MAX_ROWS,
    choose_model_weights,
    predict,
    predict_rows,
    recent_band_scale,
    train,
)
from forecasting.service import forecast, frame_from_profiles
from grid.config import load_site
from grid.profiles import as_telemetry, generate
from grid.store import open_store

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
TZ = SITE.site.tz
START = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
FRAME = frame_from_profiles(generate(SITE, START, 96 * 29, seed=3))
SPLIT = FRAME.index[0] + pd.Timedelta(days=21)


@pytest.fixture(scope="module")
def load_model():
    return train(FRAME[FRAME.index < SPLIT], "load", 900, TZ, n_estimators=200)


def test_features_never_look_into_the_future() -> None:
    origins = FRAME.index[200:260:7]
    before = rows(FRAME, "load_kw", 900, TZ, origins, [1, 4, 96])
    for origin in origins:
        changed = FRAME.copy()
        later = changed.index > origin
        for column in ("load_kw", "pv_kw", "net_load_kw", "net_load_change_30min"):
            changed.loc[later, column] = changed.loc[later, column] * 7 + 100
        after = rows(changed, "load_kw", 900, TZ, pd.DatetimeIndex([origin]), [1, 4, 96])
        mine = before[before["origin"] == origin].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine[FEATURES], after[FEATURES])


def test_model_beats_seasonal_naive_and_persistence_on_a_held_out_week(load_model) -> None:
    scores = backtest(load_model, FRAME, SPLIT, SPLIT + pd.Timedelta(days=7), TZ, [4, 16])
    one_hour = scores[0]
    assert one_hour.mae_model < 0.8 * one_hour.mae_seasonal_naive, one_hour
    assert one_hour.mae_model < one_hour.mae_persistence, one_hour
    assert 0.7 <= one_hour.coverage_p10_p90 <= 0.9, one_hour


def test_p50_leans_on_persistence_only_where_it_clearly_won_held_out() -> None:
    rng = np.random.default_rng(0)
    n = 200
    truth = rng.normal(10.0, 3.0, 2 * n)
    held = pd.DataFrame(
        {
            "y": truth,
            "horizon": np.repeat([1.0, 4.0], n),
            # at 1 step the last value is close and the model far; at 4 steps they tie
            "y_now": np.concatenate([truth[:n] + rng.normal(0, 0.2, n), truth[n:] + 1.0]),
        }
    )
    model_p50 = np.concatenate([truth[:n] + 2.0, truth[n:] - 1.0])
    raw = np.column_stack([model_p50 - 1, model_p50, model_p50 + 1])
    weights = choose_model_weights(raw, held)
    assert weights[1] < 0.5 and weights[4] == 1.0


def test_pv_quantiles_are_never_negative_and_zero_at_night() -> None:
    pv = train(FRAME[FRAME.index < SPLIT], "pv", 900, TZ, n_estimators=100)
    q = predict(pv, FRAME, SPLIT + pd.Timedelta(hours=20), 96, TZ)  # through the night
    assert np.all(q >= 0.0) and q[:, 2].max() > 0.0
    night = q[:, 0] == 0.0  # the band reaches the 0 PV really takes at night
    assert 8 <= night.sum() < 96


def test_band_recalibrates_on_forecasts_made_after_training(load_model) -> None:
    origin = SPLIT + pd.Timedelta(days=4)
    assert recent_band_scale(load_model, FRAME, SPLIT, TZ) == (load_model.band_scale, 0)
    calm, scored = recent_band_scale(load_model, FRAME, origin, TZ)
    assert scored > 1_000
    # the same days, but the load swings far more than in the training weeks
    rough = FRAME[["load_kw", "pv_kw", "price_eur_per_kwh"]].copy()
    after = rough.index > SPLIT
    noise = np.random.default_rng(0).normal(0.0, 6.0, after.sum())
    rough.loc[after, "load_kw"] = (rough.loc[after, "load_kw"] + noise).clip(lower=0)
    rough = with_derived(rough, 900)
    wide, _ = recent_band_scale(load_model, rough, origin, TZ)
    assert wide > 1.5 * calm
    # what happens after the origin does not move the factor
    later = rough.copy()
    later.loc[later.index > origin, "load_kw"] = 500.0
    assert recent_band_scale(load_model, with_derived(later, 900), origin, TZ)[0] == wide


def test_quantiles_are_ordered_and_batches_are_capped(load_model) -> None:
    origin = SPLIT + pd.Timedelta(hours=13)
    q = predict(load_model, FRAME, origin, 96, TZ)
    assert q.shape == (96, 3)
    assert np.all(q[:, 0] <= q[:, 1]) and np.all(q[:, 1] <= q[:, 2])
    big = rows(FRAME, "load_kw", 900, TZ, FRAME.index[100:200], list(range(1, 12)))
    assert len(big) > MAX_ROWS
    with pytest.raises(ValueError, match="limit is 1000"):
        predict_rows(load_model, big)


def test_registry_round_trips_promotes_and_rolls_back(load_model, tmp_path: Path) -> None:
    first = registry.save(tmp_path, load_model, metrics={"mae_1h": 1.5})
    second = registry.save(tmp_path, load_model)
    assert registry.current(tmp_path, "load") == second.version
    restored, meta = registry.load(tmp_path, "load")
    origin = SPLIT + pd.Timedelta(hours=5)
    np.testing.assert_allclose(
        predict(restored, FRAME, origin, 8, TZ),
        predict(load_model, FRAME, origin, 8, TZ),
        rtol=1e-5,
    )
    assert meta.features == FEATURES and meta.band_scale == load_model.band_scale
    assert restored.model_weight_by_horizon == load_model.model_weight_by_horizon
    assert registry.roll_back(tmp_path, "load") == first.version
    assert registry.current(tmp_path, "load") == first.version
    with pytest.raises(ValueError, match="no earlier load model"):
        registry.roll_back(tmp_path, "load")


def _store_history(store, days: float, end: datetime) -> None:
    profiles = generate(SITE, end - timedelta(days=days), int(days * 96), seed=3)
    store.write(as_telemetry(SITE, profiles))


def test_forecast_falls_back_and_says_so(tmp_path: Path, load_model) -> None:
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    empty = forecast(SITE, store, now, "load", 8, registry_dir=tmp_path / "models")
    assert empty.method == "persistence" and "no history" in empty.note
    _store_history(store, 2, now)
    naive = forecast(SITE, store, now, "load", 8, registry_dir=tmp_path / "models")
    assert naive.method == "seasonal_naive" and "no trained model" in naive.note
    assert all(lo <= mid <= hi for lo, mid, hi in zip(naive.p10, naive.p50, naive.p90, strict=True))
    registry.save(tmp_path / "models", load_model)
    model = forecast(SITE, store, now, "load", 8, registry_dir=tmp_path / "models")
    assert model.method == "xgboost" and model.model_version
    assert len(model.times) == 8 and model.times[0] == now
    with pytest.raises(ValueError, match=r"horizon_steps = 200 must be within \[1, 96\]"):
        forecast(SITE, store, now, "load", 200)
    store.close()


def test_forecast_reads_history_from_a_real_influxd(influxd, tmp_path: Path) -> None:
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    store = open_store(influxd.url("forecasting"), spool_dir=tmp_path)
    _store_history(store, 2, now)
    result = forecast(SITE, store, now, "net_load", 4)
    assert result.method == "seasonal_naive"
    truth = frame_from_profiles(generate(SITE, now - timedelta(days=1), 8, seed=3))
    expected = truth[TARGET_COLUMN["net_load"]].to_numpy()[:4]
    np.testing.assert_allclose(result.p50, expected, atol=1e-3)
    store.close()
