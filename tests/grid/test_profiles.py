from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from grid.config import load_site
from grid.profiles import generate

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
MONDAY = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday in summer


def test_an_instant_gets_the_same_value_whatever_window_it_is_in() -> None:
    week = generate(SITE, MONDAY, 7 * 96, seed=3)
    later = generate(SITE, MONDAY + timedelta(hours=37, minutes=15), 20, seed=3)
    offset = (37 * 60 + 15) // 15
    for name in week.load_kw:
        np.testing.assert_allclose(later.load_kw[name], week.load_kw[name][offset : offset + 20])
    np.testing.assert_allclose(later.total_pv_kw, week.total_pv_kw[offset : offset + 20])


def test_pv_is_zero_at_night_and_never_above_peak() -> None:
    day = generate(SITE, MONDAY, 96, seed=1)
    local_hours = np.array([t.astimezone(SITE.site.tz).hour for t in day.times])
    pv = day.total_pv_kw
    assert pv[(local_hours < 3) | (local_hours >= 23)].max() == 0.0
    assert pv.max() <= SITE.assets.pv[0].peak_kw
    assert pv[(local_hours >= 11) & (local_hours <= 14)].mean() > 2.0


def test_office_and_ev_loads_follow_the_working_week() -> None:
    week = generate(SITE, MONDAY, 7 * 96, seed=2)
    office = week.load_kw["hvac-office"].reshape(7, 96)
    assert office[:5].mean() > 2 * office[5:].mean()  # Mon-Fri busier than the weekend


def test_seeds_change_the_noise_but_not_the_shape() -> None:
    a = generate(SITE, MONDAY, 96, seed=1).total_load_kw
    b = generate(SITE, MONDAY, 96, seed=2).total_load_kw
    assert not np.allclose(a, b)
    assert np.corrcoef(a, b)[0, 1] > 0.7


def test_noise_free_keeps_each_days_shape_and_cloudiness_and_drops_the_jitter() -> None:
    noisy = generate(SITE, MONDAY, 2 * 96, seed=4)
    quiet = generate(SITE, MONDAY, 2 * 96, seed=4, noisy=False)
    loads = quiet.total_load_kw.reshape(2, 96)
    np.testing.assert_allclose(loads[0], loads[1])  # two workdays, nothing random left
    assert not np.allclose(noisy.total_load_kw.reshape(2, 96)[0], noisy.total_load_kw[96:])
    # the same day-level cloudiness: the noise averages out over the day
    for day in (slice(0, 96), slice(96, 192)):
        ratio = noisy.total_pv_kw[day].sum() / quiet.total_pv_kw[day].sum()
        assert 0.8 < ratio < 1.2
    assert np.abs(np.diff(quiet.total_pv_kw)).max() < np.abs(np.diff(noisy.total_pv_kw)).max()


def test_prices_follow_the_tariff_in_local_time() -> None:
    day = generate(SITE, MONDAY, 96)
    by_local_hour = {
        t.astimezone(SITE.site.tz).hour: p
        for t, p in zip(day.times, day.import_price_eur_per_kwh, strict=True)
    }
    assert by_local_hour[3] == 0.18 and by_local_hour[18] == 0.41
    assert set(day.export_price_eur_per_kwh) == {0.07}


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(SITE, datetime(2026, 6, 1), 4)
