"""The forecast service's per-store cache: later calls read only new steps, yet give
what a fresh read gives, and see a backfill of old history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from forecasting import service
from forecasting.service import forecast
from grid.profiles import as_telemetry, generate
from grid.store import open_store
from grid.telemetry import Measurement
from tests.forecasting.test_models import SITE

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
STEP = timedelta(seconds=SITE.site.step_s)


def _fresh(store, now: datetime, target: str):
    service._CACHES.pop(store, None)
    return forecast(SITE, store, now, target, 16)


def test_each_later_call_matches_a_fresh_read(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.write(as_telemetry(SITE, generate(SITE, NOW - timedelta(days=2), 2 * 96 + 4, seed=3)))
    first = forecast(SITE, store, NOW, "net_load", 16)
    assert forecast(SITE, store, NOW, "net_load", 16) == first  # the same step again
    for k in range(1, 4):
        cached = forecast(SITE, store, NOW + k * STEP, "net_load", 16)
        assert cached.times[0] == NOW + k * STEP
        assert cached == _fresh(store, NOW + k * STEP, "net_load")
    store.close()


def test_history_written_after_a_call_reaches_the_next_one(tmp_path: Path) -> None:
    """Old history arriving late (a backfill, a replayed spool) is counted and read."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    recent = generate(SITE, NOW - timedelta(hours=6), 24, seed=3)
    store.write(as_telemetry(SITE, recent))
    before = forecast(SITE, store, NOW, "load", 16)
    assert before.method == "persistence"
    store.write(as_telemetry(SITE, generate(SITE, NOW - timedelta(days=2), 2 * 96 - 24, seed=3)))
    after = forecast(SITE, store, NOW, "load", 16)
    assert after.method == "seasonal_naive"
    assert after == _fresh(store, NOW, "load")
    store.close()


def test_a_late_sample_in_steps_not_yet_counted_is_read(tmp_path: Path) -> None:
    """The counted span moves on in strides (service.RECOUNT_STEPS): a sample arriving
    late for a step behind the two re-read ones, but not yet counted, still counts."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.write(as_telemetry(SITE, generate(SITE, NOW - timedelta(days=2), 2 * 96 + 4, seed=3)))
    for k in range(4):
        before = forecast(SITE, store, NOW + k * STEP, "load", 16)
    load = SITE.assets.loads[0].id
    late = NOW - STEP + timedelta(minutes=1)  # three steps behind the next origin
    store.write(
        [
            Measurement(
                site=SITE.site.name,
                asset=load,
                quantity="power_kw",
                unit="kW",
                value=500.0,
                time=late,
            )
        ]
    )
    cached = forecast(SITE, store, NOW + 3 * STEP, "load", 16)
    assert cached != before  # the outlier widened the band
    assert cached == _fresh(store, NOW + 3 * STEP, "load")
    store.close()
