"""Each MILP builder alone: its named constraint families and the rule each one keeps."""

from __future__ import annotations

import pulp
import pytest

from grid.config import SiteConfig
from optimization.builders import loads, peakers
from optimization.inputs import InitialState, PlanInputs
from optimization.model import Model, build, empty
from optimization.solve import diagnose
from optimization.solvers import run
from tests.optimization.sites import one_battery_site
from tests.optimization.test_model import SITE, T0, day_inputs

FAMILIES = {
    "soc_balance",
    "terminal_soc",
    "switching",
    "locked",
    "dwell_on",
    "dwell_off",
    "min_kw",
    "max_kw",
    "transition",
    "held",
    "min_up",
    "min_down",
    "import_limit",
    "export_limit",
    "balance",
    "peak",
}


def _with(site: SiteConfig, **policy) -> SiteConfig:
    return site.model_copy(update={"policy": site.policy.model_copy(update=policy)})


LONG_DWELL = _with(SITE, relay_min_dwell_s=1800)


def _mid_dwell_inputs() -> PlanInputs:
    return day_inputs(
        steps=8,
        relay_on_since_s={"ev-chargers": 60.0},
        peaker_on={"gas-peaker": True},
        peaker_state_s={"gas-peaker": 300.0},
    )


def _families(m: Model) -> set[str]:
    names = set(m.prob.constraints)
    assert sum(m.families.values()) == len(names)
    for name in names:
        assert any(name.startswith(f + "_") for f in m.families), name
    return set(m.families)


def test_every_row_belongs_to_a_named_family() -> None:
    m = build(LONG_DWELL, _mid_dwell_inputs())
    assert _families(m) == FAMILIES
    assert {"dwell_on_ev_chargers_3", "min_up_gas_peaker_0", "balance_7"} <= set(m.prob.constraints)


def test_rows_that_can_bind_only_sometimes_appear_only_then() -> None:
    """A 1 kW/min ramp is less than the peaker's range in a 15-min step; one switching
    per hour is less than the four a 5-min dwell allows; the battery binary is asked for."""
    slow = SITE.assets.peakers[0].model_copy(update={"ramp_kw_per_min": 1.0})
    site = _with(SITE, relay_max_switches_per_hour=1).model_copy(
        update={"assets": SITE.assets.model_copy(update={"peakers": [slow]})}
    )
    m = build(site, _mid_dwell_inputs(), battery_modes=True)
    extra = {"ramp_up", "ramp_down", "switches_per_hour", "charge_mode", "discharge_mode"}
    assert _families(m) == (FAMILIES) | extra


def _solve(m, objective) -> None:
    m.prob += objective
    assert run(m.prob, "cbc", 10).status == pulp.LpSolutionOptimal


def test_the_peaker_builder_alone_keeps_the_minimum_up_time() -> None:
    inputs = day_inputs(steps=6)
    m = empty(inputs)
    peakers.add(m, SITE, inputs)
    m.add("quiet", pulp.lpSum(m.supply[0]) <= 0.0, 0)
    m.add("need", pulp.lpSum(m.supply[1]) >= 10.0, 1)
    _solve(m, pulp.lpSum(m.cost["fuel"]))
    on = [round(m.peaker_on["gas-peaker", t].value()) for t in range(6)]
    # started for step 1 only, but 30 min at 15-min steps keeps it on for step 2 too
    assert on == [0, 1, 1, 0, 0, 0]


def test_the_loads_builder_alone_holds_the_dwell() -> None:
    inputs = day_inputs(steps=5)
    inputs = inputs.model_copy(update={"load_kw": {**inputs.load_kw, "ev-chargers": [5.0] * 5}})
    m = empty(inputs)
    loads.add(m, LONG_DWELL, inputs)
    m.add("forced_on", m.on["ev-chargers", 0] == 1, 0)
    m.add("forced_off", m.on["ev-chargers", 1] == 0, 1)
    _solve(m, pulp.lpSum(m.cost["shed_load"]) + pulp.lpSum(m.cost["switching"]))
    on = [round(m.on["ev-chargers", t].value()) for t in range(5)]
    # shedding costs, so it comes back as soon as the 30-min dwell allows
    assert on == [1, 0, 0, 1, 1]


def test_a_diagnosis_names_the_family_a_slack_relaxed() -> None:
    inputs = day_inputs(steps=2).model_copy(update={"terminal_soc_fraction": {"battery": 0.95}})
    assert "[terminal_soc]" in diagnose(SITE, inputs, "cbc", 10)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_a_diagnosis_names_a_hard_family_no_slack_covers(solver: str) -> None:
    """An empty battery whose SoC floor it cannot reach in one step: only dropping the
    SoC dynamics would make any plan exist."""
    site = one_battery_site(
        "empty",
        capacity_kwh=10,
        max_charge_kw=1,
        max_discharge_kw=1,
        soc_min_fraction=0.5,
        soc_max_fraction=1,
        initial_soc_fraction=0.5,
    )
    inputs = PlanInputs(
        start=T0,
        step_s=3600,
        steps=2,
        load_kw={},
        pv_kw={},
        import_price_eur_per_kwh=[0.1, 0.1],
        export_price_eur_per_kwh=[0, 0],
        initial=InitialState(soc_fraction={"b": 0.0}, relay_on={}),
    )
    text = diagnose(site, inputs, solver, 10)
    assert "without the soc_balance constraints it would" in text
