"""Forecast inference time: one row and 1,000 rows through the XGBoost model, beside the
seasonal-naive floor and the whole `forecast()` service call on a SQLite store.

Run as `python -m bench.forecast_latency` (or `make bench`).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from bench._report import p50_p95, report
from forecasting import registry
from forecasting.features import rows
from forecasting.models import predict_rows, train
from forecasting.service import forecast, frame_from_profiles, seasonal_naive
from grid.config import load_site
from grid.profiles import as_telemetry, generate
from grid.store import open_store

SITE = load_site(Path(__file__).parents[1] / "examples" / "site.toml")
REPEATS = 50


def timed(fn, repeats: int = REPEATS) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    p50, p95 = p50_p95(samples)
    return p50 * 1000, p95 * 1000


def main() -> None:
    start = datetime(2026, 5, 4, tzinfo=UTC)
    profiles = generate(SITE, start, 21 * 96, seed=5)
    frame = frame_from_profiles(profiles)
    model = train(frame, "load", 900, SITE.site.tz)
    origin = frame.index[-97]
    one = rows(frame, "load_kw", 900, SITE.site.tz, pd.DatetimeIndex([origin]), [4])
    thousand = rows(frame, "load_kw", 900, SITE.site.tz, frame.index[1000:1100], list(range(1, 11)))
    future = pd.date_range(origin, periods=96, freq="900s")
    results = {
        "seasonal naive, 96 steps (floor)": timed(
            lambda: seasonal_naive(frame["load_kw"], future, 900)
        ),
        "XGBoost, 1 row": timed(lambda: predict_rows(model, one)),
        "XGBoost, 1,000 rows": timed(lambda: predict_rows(model, thousand)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'f.db'}")
        store.write(as_telemetry(SITE, profiles))
        registry.save(Path(tmp) / "models", model)
        now = profiles.times[-1] + timedelta(minutes=1)
        results["forecast() service, 96 steps, SQLite"] = timed(
            lambda: forecast(SITE, store, now, "load", 96, registry_dir=Path(tmp) / "models"),
            repeats=10,
        )
        store.close()
    floor = results["seasonal naive, 96 steps (floor)"][0]
    report(
        "forecast_latency",
        "Forecast inference latency (ms)",
        ["call", "p50 ms", "p95 ms", "p50 / floor"],
        [
            [k, f"{p50:.2f}", f"{p95:.2f}", f"{p50 / floor:.0f}x"]
            for k, (p50, p95) in results.items()
        ],
        [
            "XGBoost 3 quantiles (one model), 300 trees of depth 6, 2 threads. The service "
            "row includes reading 8 days of history from the store and building features."
        ],
    )


if __name__ == "__main__":
    main()
