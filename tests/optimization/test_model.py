from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grid.config import Load, SiteConfig, load_site, parse_site
from grid.profiles import generate
from guardrails.plans import step_actions
from guardrails.policy import SiteSnapshot
from optimization.baselines import no_control
from optimization.inputs import InitialState, PlanInputs, initial_state, inputs_from_profiles
from optimization.plan import costs_of
from optimization.solve import plan
from tests.optimization.check import check_plan

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
T0 = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday


def day_inputs(steps: int = 96, seed: int = 1, **initial) -> PlanInputs:
    state = initial_state(SITE).model_copy(update=initial)
    return inputs_from_profiles(SITE, generate(SITE, T0, steps, seed=seed), state)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_a_day_plan_keeps_every_constraint_and_beats_no_control(solver: str) -> None:
    inputs = day_inputs()
    made = plan(SITE, inputs, solver=solver)
    assert made.status == "optimal"
    check_plan(SITE, inputs, made)
    assert made.costs.total_eur < made.baseline.total_eur
    assert "saving" in made.explanation


def test_plans_starting_mid_dwell_and_with_the_peaker_running_keep_the_rules() -> None:
    inputs = day_inputs(
        steps=24,
        seed=4,
        relay_on={
            "server-room": True,
            "cold-store": True,
            "ev-chargers": False,
            "hvac-office": True,
        },
        relay_on_since_s={"ev-chargers": 60.0},
        peaker_on={"gas-peaker": True},
        peaker_state_s={"gas-peaker": 300.0},
        peak_import_kw_so_far=35.0,
    )
    made = plan(SITE, inputs)
    check_plan(SITE, inputs, made)
    # the peaker started 5 min ago with a 30 min minimum up time: it stays on 2 steps
    assert all(step.peaker_on["gas-peaker"] for step in made.steps[:2])


def hand_site(battery: dict | None = None, **tariff) -> SiteConfig:
    """One critical 10 kW load and a lossless 10 kWh battery, hourly steps, UTC."""
    return parse_site(
        {
            "site": {"name": "hand", "step_s": 3600},
            "grid": {"import_limit_kw": 100, "export_limit_kw": 0},
            "assets": {
                "batteries": [
                    {
                        "id": "b",
                        "device": "inv",
                        "capacity_kwh": 10,
                        "max_charge_kw": 10,
                        "max_discharge_kw": 10,
                        "charge_efficiency": 1,
                        "discharge_efficiency": 1,
                        "soc_min_fraction": 0,
                        "soc_max_fraction": 1,
                        "initial_soc_fraction": 0,
                        "degradation_cost_eur_per_kwh": 0,
                    }
                    | (battery or {})
                ],
                "loads": [
                    {
                        "id": "l",
                        "board": "rb",
                        "channel": 1,
                        "nominal_kw": 10,
                        "priority": 10,
                        "critical": True,
                    }
                ],
            },
            "tariff": {
                "import_periods": [
                    {"start": "00:00:00", "end": "00:00:00", "price_eur_per_kwh": 0.1}
                ]
            }
            | tariff,
            "devices": [
                {"id": "inv", "kind": "battery_inverter"},
                {"id": "rb", "kind": "relay_board"},
            ],
        }
    )


def two_hours(start: datetime, prices: list[float], soc: float, peak: float = 0.0) -> PlanInputs:
    return PlanInputs(
        start=start,
        step_s=3600,
        steps=2,
        load_kw={"l": [10, 10]},
        pv_kw={},
        import_price_eur_per_kwh=prices,
        export_price_eur_per_kwh=[0, 0],
        initial=InitialState(
            soc_fraction={"b": soc}, relay_on={"l": True}, peak_import_kw_so_far=peak
        ),
    )


def test_a_new_peak_is_charged_the_full_rate_of_its_billing_period() -> None:
    """As the hand case, but each kW above the day's peak so far (15 kW) costs 1 EUR:
    charging fully (import 20 kW) would save 4 EUR of energy and cost 5 EUR of demand
    charge. Best: charge 5 kWh only (import 15 kW): 1.50 + 2.50 = 4.00 EUR."""
    site = hand_site(demand_charge_eur_per_kw=1.0, billing_period="day")
    inputs = two_hours(T0, [0.1, 0.5], soc=0.0, peak=15.0)
    made = plan(site, inputs)
    assert made.costs.total_eur == pytest.approx(4.0, abs=1e-6)
    assert made.costs.demand_charge_eur == pytest.approx(0.0, abs=1e-6)
    assert [s.battery_kw["b"] for s in made.steps] == pytest.approx([-5, 5], abs=1e-6)


def test_a_billing_period_that_begins_inside_the_horizon_starts_from_zero() -> None:
    site = hand_site(demand_charge_eur_per_kw=1.0, billing_period="day")
    inputs = two_hours(T0 - timedelta(hours=1), [0.1, 0.1], soc=0.0, peak=30.0)
    no_battery = no_control(site, inputs)
    # 23:00 stays under the day's 30 kW; 00:00 opens a new day whose first 10 kW are paid
    assert costs_of(site, inputs, no_battery).demand_charge_eur == pytest.approx(10.0)
    made = plan(site, inputs)
    # so the plan charges before midnight and carries the new day's first hour
    assert made.steps[1].grid_import_kw == pytest.approx(0.0, abs=1e-6)
    assert made.costs.demand_charge_eur == pytest.approx(0.0, abs=1e-6)


def test_plans_keep_the_end_of_day_soc_floor_at_local_midnight() -> None:
    """A full battery before midnight with dear power: without a floor it would empty
    itself by 00:00; with a floor of 80 % it gives only 2 kWh."""
    site = hand_site({"end_of_day_soc_fraction": 0.8})
    inputs = two_hours(T0 - timedelta(hours=1), [0.5, 0.1], soc=1.0)
    made = plan(site, inputs)
    assert made.steps[0].soc_fraction["b"] == pytest.approx(0.8, abs=1e-6)
    assert made.steps[0].battery_kw["b"] == pytest.approx(2.0, abs=1e-6)
    free = plan(hand_site(), inputs)
    assert free.steps[0].soc_fraction["b"] == pytest.approx(0.0, abs=1e-6)


def test_objective_matches_a_hand_computed_case() -> None:
    """Load 10 kW for two hours priced 0.10 then 0.50 EUR/kWh; a lossless 10 kWh battery
    starting empty. Best: charge 10 kWh in hour one (import 20 kW), discharge in hour two
    (import 0): energy 20 x 0.10 = 2.00 EUR against 10 x 0.10 + 10 x 0.50 = 6.00."""
    site = hand_site()
    inputs = PlanInputs(
        start=T0,
        step_s=3600,
        steps=2,
        load_kw={"l": [10, 10]},
        pv_kw={},
        import_price_eur_per_kwh=[0.1, 0.5],
        export_price_eur_per_kwh=[0, 0],
        initial=InitialState(soc_fraction={"b": 0.0}, relay_on={"l": True}),
    )
    made = plan(site, inputs)
    assert made.costs.energy_eur == pytest.approx(2.0, abs=1e-6)
    assert made.costs.total_eur == pytest.approx(2.0, abs=1e-6)
    assert made.baseline.total_eur == pytest.approx(6.0, abs=1e-6)
    assert [s.battery_kw["b"] for s in made.steps] == pytest.approx([-10, 10], abs=1e-6)
    check_plan(site, inputs, made)


def test_an_unreachable_terminal_soc_is_diagnosed_and_falls_back() -> None:
    inputs = day_inputs(steps=2).model_copy(update={"terminal_soc_fraction": {"battery": 0.95}})
    made = plan(SITE, inputs)
    assert made.status == "fallback"
    assert made.diagnosis is not None and "terminal SoC of battery: short by" in made.diagnosis
    assert "Fallback (rule-based) plan" in made.explanation
    check_plan(SITE, inputs, made)  # the fallback keeps the hard rules too


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"import_price_eur_per_kwh": [0.1]}, "import_price_eur_per_kwh has 1 values"),
        ({"load_kw": {"server-room": [-1.0] * 4}}, "negative value"),
    ],
)
def test_bad_inputs_name_the_field(change: dict, message: str) -> None:
    raw = day_inputs(steps=4).model_dump()
    raw.update(change)
    if "load_kw" in change:
        raw["load_kw"] = {**day_inputs(steps=4).load_kw, **change["load_kw"]}
    with pytest.raises(ValueError, match=message):
        PlanInputs.model_validate(raw)


def test_unknown_objective_term_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown term 'profit'"):
        plan(SITE, day_inputs(steps=4), objective_weights={"profit": 2.0})


def test_highs_writes_nothing_to_stdout() -> None:
    code = (
        "from tests.optimization.test_model import SITE, day_inputs\n"
        "from optimization.solve import plan\n"
        "assert plan(SITE, day_inputs(steps=8), solver='highs').status == 'optimal'\n"
    )
    root = Path(__file__).parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "HiGHS" in result.stderr  # the banner went to stderr, where it harms nothing


def test_a_plan_is_stamped_with_the_clock_it_was_given_not_the_wall() -> None:
    inputs = day_inputs(steps=8)
    then = datetime(2031, 3, 4, 5, 6, tzinfo=UTC)
    assert plan(SITE, inputs, now=then).created_at == then
    assert plan(SITE, inputs).created_at == inputs.start


def test_a_metered_load_without_a_relay_is_planned_for_and_never_switched() -> None:
    loads = [
        ld.model_copy(update={"board": None, "channel": None, "critical": False})
        if ld.id == "ev-chargers"
        else ld
        for ld in SITE.assets.loads
    ]
    site = SITE.model_copy(update={"assets": SITE.assets.model_copy(update={"loads": loads})})
    inputs = day_inputs(steps=48)
    # dear enough power that the plan would shed the EV chargers if it could
    shed_worthy = inputs.model_copy(update={"import_price_eur_per_kwh": [50.0] * 48})
    assert not all(step.relay_on["ev-chargers"] for step in plan(SITE, shed_worthy).steps)
    made = plan(site, shed_worthy)
    assert all(step.relay_on["ev-chargers"] for step in made.steps)
    snap = SiteSnapshot(now=made.steps[0].time, relay_on={"ev-chargers": None})
    actions = step_actions(site, made.steps[0], snap, 0.0)
    assert all(a.asset != "ev-chargers" for a in actions)


def test_a_load_with_half_a_relay_is_refused_naming_the_fields() -> None:
    with pytest.raises(ValueError, match="both board and channel"):
        Load(id="x", board="relay-1", nominal_kw=1.0, priority=1)
