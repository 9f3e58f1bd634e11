from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from grid.config import load_site
from optimization import closed_loop as loop

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
START = datetime(2026, 6, 2, tzinfo=UTC)


def test_perfect_foresight_beats_rules_which_beat_nothing_and_no_limit_breaks() -> None:
    nothing = loop.no_control_result(SITE, START, 1)
    rules = loop.run(SITE, START, 1, None, name="rules")
    foresight = loop.run(
        SITE, START, 1, loop.perfect_foresight, horizon_steps=24, replan_every=8, name="pf"
    )
    assert foresight.costs.total < rules.costs.total <= nothing.costs.total
    assert foresight.solves == 12 and foresight.fallbacks == 0
    for result in (nothing, rules, foresight):
        assert result.import_limit_breaches == 0
    assert foresight.peak_import_kw <= nothing.peak_import_kw + 1e-6


def test_a_planned_step_meets_the_truth_within_battery_limits() -> None:
    truth = loop.truth_for(SITE, START, 1, 0, 8)
    wanted = loop.rule_based(SITE, loop._window(truth, 96, 1, loop.initial_state(SITE)))[0]
    greedy = wanted.model_copy(update={"battery_kw": {"battery": 25.0}})
    real = loop.realise(SITE, truth, 96, greedy, {"battery": 0.11})
    # 1 % of 50 kWh above the minimum is all the cells can give in this step
    assert 0 < real.battery_kw["battery"] < 25.0
    assert abs(real.soc_fraction["battery"] - 0.10) < 1e-6


def test_peak_shaving_holds_the_import_to_the_cap_while_the_battery_can() -> None:
    truth = loop.truth_for(SITE, START, 1, 0, 8)
    t = 96 + 40  # 10:00 local on a workday: EV chargers and offices on
    wanted = loop.rule_based(SITE, loop._window(truth, t, 1, loop.initial_state(SITE)))[0]
    idle = wanted.model_copy(update={"battery_kw": {"battery": 0.0}})
    free = loop.realise(SITE, truth, t, idle, {"battery": 0.6})
    cap = free.grid_import_kw - 5.0
    held = loop.realise(SITE, truth, t, idle, {"battery": 0.6}, import_cap_kw=cap)
    assert abs(held.grid_import_kw - cap) < 1e-6
    assert abs(held.battery_kw["battery"] - 5.0) < 1e-6
    assert held.soc_fraction["battery"] < 0.6
    # an empty battery cannot hold it
    empty = loop.realise(SITE, truth, t, idle, {"battery": 0.10}, import_cap_kw=cap)
    assert abs(empty.grid_import_kw - free.grid_import_kw) < 1e-6
