from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from grid.config import load_site
from guardrails.plans import step_actions
from guardrails.policy import SiteSnapshot
from optimization import closed_loop as loop
from optimization.plan import import_cap_kw, shave_reserve_soc

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
START = datetime(2026, 6, 2, tzinfo=UTC)


def _window(truth, t: int):
    return loop.profile_window(SITE, truth, t, 1, loop.initial_state(SITE))


def test_perfect_foresight_beats_rules_which_beat_nothing_and_no_limit_breaks() -> None:
    nothing = loop.no_control_result(SITE, START, 1)
    rules = loop.run(SITE, START, 1, None, name="rules")
    foresight = loop.run(
        SITE, START, 1, loop.perfect_foresight, horizon_steps=24, replan_every=8, name="pf"
    )
    assert foresight.costs.total_eur < rules.costs.total_eur <= nothing.costs.total_eur
    assert foresight.solves == 12 and foresight.fallbacks == 0
    for result in (nothing, rules, foresight):
        assert result.import_limit_breaches == 0
    assert foresight.peak_import_kw <= nothing.peak_import_kw + 1e-6


def test_a_planned_step_meets_the_truth_within_battery_limits() -> None:
    truth = loop.truth_for(SITE, START, 1, 0, 8)
    wanted = loop.rule_based(
        SITE, loop.profile_window(SITE, truth, 96, 1, loop.initial_state(SITE))
    )[0]
    greedy = wanted.model_copy(
        update={"battery_kw": {"battery": 25.0}, "soc_fraction": {"battery": 0.0}}
    )
    real = loop.realise(SITE, truth, 96, greedy, {"battery": 0.11})
    # 1 % of 50 kWh above the minimum is all the cells can give in this step
    assert 0 < real.battery_kw["battery"] < 25.0
    assert abs(real.soc_fraction["battery"] - 0.10) < 1e-6


def test_peak_shaving_holds_the_import_to_the_cap_while_the_battery_can() -> None:
    truth = loop.truth_for(SITE, START, 1, 0, 8)
    t = 96 + 40  # 10:00 local on a workday: EV chargers and offices on
    wanted = loop.rule_based(
        SITE, loop.profile_window(SITE, truth, t, 1, loop.initial_state(SITE))
    )[0]
    idle = wanted.model_copy(
        update={"battery_kw": {"battery": 0.0}, "soc_fraction": {"battery": 0.6}}
    )
    free = loop.realise(SITE, truth, t, idle, {"battery": 0.6})
    cap = free.grid_import_kw - 5.0
    held = loop.realise(SITE, truth, t, idle, {"battery": 0.6}, import_cap_kw=cap)
    assert abs(held.grid_import_kw - cap) < 1e-6
    assert abs(held.battery_kw["battery"] - 5.0) < 1e-6
    assert held.soc_fraction["battery"] < 0.6
    # a plan that over-forecast the load: the battery gives up the discharge the site
    # did not need and holds the plan's import instead
    over = idle.model_copy(
        update={"battery_kw": {"battery": 10.0}, "grid_import_kw": free.grid_import_kw - 4.0}
    )
    over = over.model_copy(update={"soc_fraction": {"battery": 0.6 - 10.0 * 0.25 / 0.95 / 50}})
    kept = loop.realise(SITE, truth, t, over, {"battery": 0.6}, import_cap_kw=free.grid_import_kw)
    assert abs(kept.battery_kw["battery"] - 4.0) < 1e-6
    assert abs(kept.grid_import_kw - (free.grid_import_kw - 4.0)) < 1e-6
    # an empty battery cannot hold it
    idle = idle.model_copy(update={"soc_fraction": {"battery": 0.10}})
    empty = loop.realise(SITE, truth, t, idle, {"battery": 0.10}, import_cap_kw=cap)
    assert abs(empty.grid_import_kw - free.grid_import_kw) < 1e-6


def _pv_step(t: int, planned_kw: float, forecast_kw: float):
    truth = loop.truth_for(SITE, START, 1, 0, 8)
    step = loop.rule_based(SITE, _window(truth, t))[0]
    return truth, step.model_copy(
        update={
            "battery_kw": {"battery": 0.0},
            "soc_fraction": {"battery": 0.5},
            "pv_limit_kw": {"pv-roof": planned_kw},
            "pv_available_kw": {"pv-roof": forecast_kw},
        }
    )


def test_realise_and_live_dispatch_cap_pv_only_where_the_plan_curtails() -> None:
    t = 96 + 48  # local noon: the sun is out
    truth, step = _pv_step(t, planned_kw=3.0, forecast_kw=3.0)  # forecast too low, no curtailing
    sun = float(truth.pv_kw["pv-roof"][t])
    assert sun > 3.0
    assert loop.realise(SITE, truth, t, step, {"battery": 0.5}).pv_limit_kw["pv-roof"] == sun
    snap = SiteSnapshot(now=truth.times[t])
    (pv_action,) = [a for a in step_actions(SITE, step, snap, 0.0) if a.kind == "set_pv_limit"]
    assert pv_action.power_kw == SITE.assets.pv[0].peak_kw  # released, not held at 3 kW

    truth, curtailed = _pv_step(t, planned_kw=2.0, forecast_kw=sun)
    assert loop.realise(SITE, truth, t, curtailed, {"battery": 0.5}).pv_limit_kw["pv-roof"] == 2.0
    (pv_action,) = [a for a in step_actions(SITE, curtailed, snap, 0.0) if a.kind == "set_pv_limit"]
    assert pv_action.power_kw == 2.0


def test_non_curtailable_pv_is_never_curtailed() -> None:
    pv = SITE.assets.pv[0].model_copy(update={"curtailable": False})
    site = SITE.model_copy(update={"assets": SITE.assets.model_copy(update={"pv": [pv]})})
    t = 96 + 48
    truth, curtailed = _pv_step(t, planned_kw=2.0, forecast_kw=10.0)
    real = loop.realise(site, truth, t, curtailed, {"battery": 0.5})
    assert real.pv_limit_kw["pv-roof"] == float(truth.pv_kw["pv-roof"][t])
    snap = SiteSnapshot(now=truth.times[t])
    assert not [a for a in step_actions(site, curtailed, snap, 0.0) if a.kind == "set_pv_limit"]


def test_the_import_cap_never_exceeds_the_import_limit_live_or_in_the_loop() -> None:
    truth, step = _pv_step(96 + 40, planned_kw=0.0, forecast_kw=0.0)
    limit = SITE.grid.import_limit_kw
    assert import_cap_kw(SITE, limit + 40.0, step) == limit
    snap = SiteSnapshot(now=truth.times[96 + 40])
    (battery,) = [
        a for a in step_actions(SITE, step, snap, limit + 40) if a.kind.startswith("set_b")
    ]
    assert battery.import_cap_kw == limit


def _with_floor(floor: float = 0.5):
    battery = SITE.assets.batteries[0].model_copy(update={"end_of_day_soc_fraction": floor})
    assets = SITE.assets.model_copy(update={"batteries": [battery]})
    return SITE.model_copy(update={"assets": assets})


def test_peak_shaving_stops_at_the_reserve_the_end_of_day_floor_needs() -> None:
    site = _with_floor(0.5)
    truth = loop.truth_for(site, START, 1, 0, 8)
    step_h = timedelta(seconds=truth.step_s)
    last = next(  # the step that ends at local midnight
        t for t in range(96, 200) if (truth.times[t] + step_h).astimezone(site.site.tz).hour == 0
    )
    assert shave_reserve_soc(site, truth.times[last] + step_h)["battery"] == 0.5
    assert shave_reserve_soc(site, truth.times[96 + 40] + step_h)["battery"] == 0.1
    for t, reserve in ((last, 0.5), (96 + 40, None)):
        idle = loop.rule_based(site, _window(truth, t))[0].model_copy(
            update={"battery_kw": {"battery": 0.0}, "soc_fraction": {"battery": 0.52}}
        )
        free = loop.realise(site, truth, t, idle, {"battery": 0.52})
        cap = max(0.0, free.grid_import_kw - 20.0)
        held = loop.realise(site, truth, t, idle, {"battery": 0.52}, import_cap_kw=cap)
        if reserve is None:  # mid-day the whole battery may shave
            assert abs(held.grid_import_kw - cap) < 1e-6
        else:  # the last step before midnight shaves only down to the floor
            assert abs(held.soc_fraction["battery"] - reserve) < 1e-9
            assert cap < held.grid_import_kw < free.grid_import_kw
            # live dispatch sends the same reserve, and steers back to the plan's SoC
            snap = SiteSnapshot(now=truth.times[t], soc_fraction={"battery": 0.40})
            actions = step_actions(site, idle, snap, cap)
            (battery,) = [a for a in actions if a.kind == "set_battery_power"]
            assert battery.reserve_soc_fraction == 0.5 and battery.import_cap_kw is not None
            assert battery.follow_import_kw == round(idle.grid_import_kw, 3)
            assert battery.power_kw < 0  # 0.40 -> 0.52: charge
    # beyond the import limit the battery shaves below the reserve: the limit comes first
    idle = idle.model_copy(update={"soc_fraction": {"battery": 0.5}})
    free = loop.realise(site, truth, last, idle, {"battery": 0.5})
    grid = site.grid.model_copy(update={"import_limit_kw": free.grid_import_kw - 3.0})
    tight = site.model_copy(update={"grid": grid})
    over = loop.realise(tight, truth, last, idle, {"battery": 0.5}, import_cap_kw=0.0)
    assert abs(over.grid_import_kw - grid.import_limit_kw) < 1e-6
    assert over.soc_fraction["battery"] < 0.5


def test_mpc_on_an_under_forecast_keeps_every_end_of_day_floor() -> None:
    site = _with_floor(0.5)

    def low(truth, t: int, n: int) -> loop.Seen:  # loads 30 % under, as a biased model
        seen = loop.perfect_foresight(truth, t, n)
        return loop.Seen({k: [0.7 * x for x in v] for k, v in seen.load_kw.items()}, seen.pv_kw)

    result = loop.run(site, START, 1, low, horizon_steps=24, replan_every=8, name="low")
    assert result.days_below_soc_floor == 0 and result.import_limit_breaches == 0
    assert result.fallbacks == 0
