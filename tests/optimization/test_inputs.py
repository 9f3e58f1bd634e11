from __future__ import annotations

from pathlib import Path

from grid.config import load_site
from optimization.inputs import initial_from_readings

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")


def test_a_measured_soc_of_zero_is_read_as_zero_not_as_missing() -> None:
    state = initial_from_readings(SITE, {"battery": 0.0}, {}, {}, 0.0)
    assert state.soc_fraction["battery"] == 0.0


def test_a_battery_not_heard_from_starts_at_its_configured_soc() -> None:
    state = initial_from_readings(SITE, {"battery": None}, {"ev-chargers": False}, {}, 12.0)
    assert state.soc_fraction["battery"] == SITE.assets.batteries[0].initial_soc_fraction
    assert state.relay_on["ev-chargers"] is False and state.relay_on["server-room"] is True
    assert state.peak_import_kw_so_far == 12.0
