"""How a plan is solved: relax and round, the battery binary only when needed, warm
starts from the previous plan, and the same plan from repeated solves."""

from __future__ import annotations

from datetime import timedelta

import pulp
import pytest

from optimization.builders.battery import overlap_steps
from optimization.inputs import InitialState, PlanInputs
from optimization.model import build
from optimization.solve import _warm, plan
from optimization.solvers import run
from tests.optimization.check import check_plan
from tests.optimization.sites import one_battery_site
from tests.optimization.test_model import SITE, T0, day_inputs


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_repeated_solves_give_the_same_plan(solver: str) -> None:
    inputs = day_inputs(steps=48, seed=3)
    first, second = plan(SITE, inputs, solver=solver), plan(SITE, inputs, solver=solver)
    assert first.status == "optimal" and first.gap is not None and first.gap <= 0.005
    assert first.steps == second.steps


def test_a_warm_start_takes_the_previous_plans_decisions_shifted_to_the_new_start() -> None:
    previous = plan(SITE, day_inputs(steps=16, seed=2, peak_import_kw_so_far=5.0))
    later = day_inputs(steps=16, seed=2).model_copy(
        update={"start": T0 + timedelta(seconds=4 * SITE.site.step_s)}
    )
    m = build(SITE, later)
    assert _warm(SITE, later, m, previous)
    for t in range(16):
        old = previous.steps[min(t + 4, 15)]
        assert m.on["ev-chargers", t].varValue == int(old.relay_on["ev-chargers"])
        assert m.peaker_on["gas-peaker", t].varValue == int(old.peaker_on["gas-peaker"])
    made = plan(SITE, later, warm_start=previous, solver="highs")
    assert made.status == "optimal"
    check_plan(SITE, later, made)


def test_a_plan_from_before_the_previous_plan_is_no_warm_start() -> None:
    previous = plan(SITE, day_inputs(steps=4))
    earlier = day_inputs(steps=4).model_copy(update={"start": T0 - timedelta(hours=1)})
    assert not _warm(SITE, earlier, build(SITE, earlier), previous)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_a_plan_never_charges_and_discharges_at_once_even_when_that_would_pay(
    solver: str,
) -> None:
    """A full battery and an hour when importing is paid: burning imported energy as
    losses would earn money, which the model without the battery binary does; the plan
    is solved again with it."""
    site = one_battery_site(
        "burn",
        capacity_kwh=20,
        max_charge_kw=10,
        max_discharge_kw=10,
        charge_efficiency=0.9,
        discharge_efficiency=0.9,
        soc_min_fraction=0,
        soc_max_fraction=1,
        initial_soc_fraction=1,
    )
    inputs = PlanInputs(
        start=T0,
        step_s=3600,
        steps=2,
        load_kw={},
        pv_kw={},
        import_price_eur_per_kwh=[-0.5, 0.1],
        export_price_eur_per_kwh=[0, 0],
        initial=InitialState(soc_fraction={"b": 1.0}, relay_on={}),
    )
    loose = build(site, inputs)
    assert run(loose.prob, solver, 10).status == pulp.LpSolutionOptimal
    assert overlap_steps(loose, site) == [0]
    made = plan(site, inputs, solver=solver)
    assert made.status == "optimal"
    assert made.steps[0].battery_kw["b"] == pytest.approx(0.0, abs=1e-6)
    check_plan(site, inputs, made)  # SoC follows the net power: nothing burned
