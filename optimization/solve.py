"""From inputs to a plan: solve the MILP, or diagnose why not and fall back to rules."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

import pulp

from grid.config import SiteConfig
from grid.errors import SolverFailed
from optimization.baselines import no_control, rule_based
from optimization.builders.battery import overlap_steps
from optimization.inputs import PlanInputs
from optimization.model import Model, build
from optimization.plan import CostBreakdown, Plan, StepSetpoints, costs_of
from optimization.solvers import Solver, options_for, run, solve

SOLVED = (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)


def plan(
    site: SiteConfig,
    inputs: PlanInputs,
    *,
    solver: Solver = "cbc",
    time_limit_s: float = 20.0,
    objective_weights: dict[str, float] | None = None,
    warm_start: Plan | None = None,
    now: datetime | None = None,
) -> Plan:
    """The cheapest schedule that keeps every hard constraint, or, when there is none,
    the rule-based fallback with a diagnosis of what could not be met. `now` (the
    site's clock) stamps `created_at`; without it, the plan's start.

    `warm_start`, an earlier plan (the previous one of a receding horizon), gives the
    solver its relay and peaker decisions, shifted to this plan's start, as a first
    incumbent."""
    inputs.check_against(site)
    if not 0 < time_limit_s <= 600:
        raise ValueError(f"time_limit_s = {time_limit_s} must be within (0, 600]")
    made_at = now if now is not None else inputs.start
    options = options_for(inputs.steps)
    model = build(site, inputs, objective_weights)
    warm = warm_start is not None and _warm(site, inputs, model, warm_start)
    outcome = solve(model.prob, solver, time_limit_s, options, warm, _round_up_from(model))
    seconds = outcome.seconds
    if outcome.status in SOLVED and overlap_steps(model, site):
        # the plan burns energy through the battery somewhere: forbid it explicitly
        model = build(site, inputs, objective_weights, battery_modes=True)
        warm = warm_start is not None and _warm(site, inputs, model, warm_start)
        left = max(1.0, time_limit_s - seconds)
        outcome = solve(model.prob, solver, left, options, warm, _round_up_from(model))
        seconds += outcome.seconds
    baseline = costs_of(site, inputs, no_control(site, inputs))
    if outcome.status in SOLVED:
        steps = extract(site, inputs, model)
        costs = costs_of(site, inputs, steps)
        label = "optimal" if outcome.status == pulp.LpSolutionOptimal else "feasible"
        note = (
            None
            if label == "optimal"
            else (
                f"the {time_limit_s:g} s time limit stopped the search: feasible, maybe not optimal"
            )
        )
        made = _plan(site, inputs, steps, label, solver, seconds, costs, baseline, note, made_at)
        return made.model_copy(update={"gap": outcome.gap})
    diagnosis = diagnose(site, inputs, solver, time_limit_s)
    steps = rule_based(site, inputs)
    if not steps:
        raise SolverFailed(diagnosis)
    costs = costs_of(site, inputs, steps)
    return _plan(
        site, inputs, steps, "fallback", solver, seconds, costs, baseline, diagnosis, made_at
    )


def _round_up_from(m: Model) -> dict[str, float]:
    """Peakers the relaxation runs at all are rounded on (see solvers.ROUND_UP_FROM)."""
    return {var.name: 0.0 for var in m.peaker_on.values()}


def _warm(site: SiteConfig, inputs: PlanInputs, m: Model, previous: Plan) -> bool:
    """Set the relay and peaker binaries to an earlier plan's, shifted to this start (the
    earlier plan's last step held past its end); the solver completes the rest. False
    when the earlier plan does not reach this start or is for other assets."""
    offset_s = (inputs.start - previous.steps[0].time).total_seconds()
    if offset_s < 0 or previous.step_s != inputs.step_s or offset_s % inputs.step_s:
        return False
    first = int(offset_s // inputs.step_s)
    if first >= len(previous.steps):
        return False
    steps = [previous.steps[min(first + t, len(previous.steps) - 1)] for t in range(inputs.steps)]
    for (asset, t), var in m.on.items():
        if isinstance(var, pulp.LpVariable):
            if asset not in steps[t].relay_on:
                return False
            var.setInitialValue(int(steps[t].relay_on[asset]))
    for (asset, t), var in m.peaker_on.items():
        if asset not in steps[t].peaker_on:
            return False
        var.setInitialValue(int(steps[t].peaker_on[asset]))
    return True


def diagnose(site: SiteConfig, inputs: PlanInputs, solver: Solver, time_limit_s: float) -> str:
    """Re-solve with priced slack on the constraints that can be missed; name the ones
    that needed it, when, and by how much."""
    soft = build(site, inputs, soft=True, battery_modes=True)
    options = options_for(inputs.steps)
    if run(soft.prob, solver, time_limit_s, options).status not in SOLVED:
        culprits = _culprit_families(site, inputs, solver, time_limit_s, soft.families)
        named = (
            f"without the {', '.join(culprits)} constraints it would"
            if culprits
            else "no single constraint family is to blame"
        )
        return (
            "no plan exists even with the terminal SoC, import/export limits and critical "
            f"loads relaxed; {named}; check the site file's limits"
        )
    missed = []
    for name, var in soft.slacks.items():
        amount = var.value() or 0.0
        if amount > 1e-4:
            missed.append((name, amount))
    if not missed:
        return "the solver found no plan within its limits, but no constraint had to be relaxed"
    missed.sort(key=lambda item: -item[1])
    parts = [
        f"{_describe(name, amount, site, inputs)} [{_RELAXED_FAMILY[name.partition(':')[0]]}]"
        for name, amount in missed[:3]
    ]
    more = f" (and {len(missed) - 3} more)" if len(missed) > 3 else ""
    return "cannot be met: " + "; ".join(parts) + more


# slack kind -> the constraint family whose rows the slack relaxes
_RELAXED_FAMILY = {
    "terminal_soc": "terminal_soc",
    "day_end_soc": "day_end_soc",
    "critical_load": "balance",
    "import_limit": "import_limit",
    "export_limit": "export_limit",
}


def _culprit_families(
    site: SiteConfig,
    inputs: PlanInputs,
    solver: Solver,
    time_limit_s: float,
    families: dict[str, int],
) -> list[str]:
    """The constraint families whose removal alone makes the soft model solvable."""
    found = []
    for family in families:
        trial = build(site, inputs, soft=True, skip=frozenset({family}), battery_modes=True)
        if run(trial.prob, solver, time_limit_s, options_for(inputs.steps)).status in SOLVED:
            found.append(family)
    return found


def _describe(name: str, amount: float, site: SiteConfig, inputs: PlanInputs) -> str:
    kind, _, rest = name.partition(":")
    if kind == "terminal_soc":
        battery = next(b for b in site.assets.batteries if b.id == rest)
        return (
            f"terminal SoC of {rest}: short by {amount:.1f} kWh "
            f"({amount / battery.capacity_kwh:.0%} of capacity) at the end of the horizon"
        )
    asset, _, step = rest.rpartition(":") if ":" in rest else ("", "", rest)
    when = inputs.start + timedelta(seconds=int(step) * inputs.step_s)
    if kind == "day_end_soc":
        battery = next(b for b in site.assets.batteries if b.id == asset)
        return (
            f"end-of-day SoC floor of {asset} ({battery.end_of_day_soc_fraction:.0%}): short "
            f"by {amount:.1f} kWh at {when + timedelta(seconds=inputs.step_s):%Y-%m-%d %H:%M}Z"
        )
    if kind == "critical_load":
        return f"critical load {asset} short by {amount:.1f} kW at {when:%Y-%m-%d %H:%M}Z"
    limit = site.grid.import_limit_kw if kind == "import_limit" else site.grid.export_limit_kw
    what = "import" if kind == "import_limit" else "export"
    return f"{what} limit ({limit:g} kW) exceeded by {amount:.1f} kW at {when:%Y-%m-%d %H:%M}Z"


def extract(site: SiteConfig, inputs: PlanInputs, m: Model) -> list[StepSetpoints]:
    def val(x) -> float:
        return float(x.value() or 0.0) if isinstance(x, pulp.LpVariable) else float(x)

    steps = []
    for t in range(inputs.steps):
        relay_on = {ld.id: val(m.on[ld.id, t]) > 0.5 for ld in site.assets.loads}
        steps.append(
            StepSetpoints(
                time=inputs.start + timedelta(seconds=t * inputs.step_s),
                battery_kw={
                    b.id: round(val(m.discharge[b.id, t]) - val(m.charge[b.id, t]), 4)
                    for b in site.assets.batteries
                },
                soc_fraction={
                    b.id: round(val(m.soc_kwh[b.id, t]) / b.capacity_kwh, 5)
                    for b in site.assets.batteries
                },
                relay_on=relay_on,
                peaker_kw={g.id: round(val(m.peaker_kw[g.id, t]), 4) for g in site.assets.peakers},
                peaker_on={g.id: val(m.peaker_on[g.id, t]) > 0.5 for g in site.assets.peakers},
                pv_limit_kw={p.id: round(val(m.pv[p.id, t]), 4) for p in site.assets.pv},
                pv_available_kw={p.id: inputs.pv_kw[p.id][t] for p in site.assets.pv},
                grid_import_kw=round(val(m.grid_import[t]), 4),
                grid_export_kw=round(val(m.grid_export[t]), 4),
                shed_kw=round(sum(inputs.load_kw[k][t] for k, on in relay_on.items() if not on), 4),
            )
        )
    return steps


def inputs_hash(inputs: PlanInputs) -> str:
    return hashlib.sha256(inputs.model_dump_json().encode()).hexdigest()


def _plan(
    site: SiteConfig,
    inputs: PlanInputs,
    steps: list[StepSetpoints],
    status: str,
    solver: str,
    seconds: float,
    costs: CostBreakdown,
    baseline: CostBreakdown,
    diagnosis: str | None,
    created_at: datetime,
) -> Plan:
    return Plan(
        id="plan-" + uuid.uuid4().hex[:12],
        inputs_hash=inputs_hash(inputs),
        created_at=created_at,
        horizon_steps=inputs.steps,
        step_s=inputs.step_s,
        status=status,
        solver=solver,
        solve_time_s=round(seconds, 3),
        objective_eur=costs.total_eur,
        costs=costs,
        baseline=baseline,
        steps=steps,
        peak_import_kw_so_far=inputs.initial.peak_import_kw_so_far,
        diagnosis=diagnosis,
        explanation=explain(site, inputs, steps, costs, baseline, status, diagnosis),
    )


def explain(
    site: SiteConfig,
    inputs: PlanInputs,
    steps: list[StepSetpoints],
    costs: CostBreakdown,
    baseline: CostBreakdown,
    status: str,
    diagnosis: str | None,
) -> str:
    """A few sentences an LLM (or a person) can repeat: what the plan does and saves."""
    hours = inputs.steps * inputs.step_s / 3600
    peak = max(s.grid_import_kw for s in steps)
    charged = sum(max(0.0, -kw) for s in steps for kw in s.battery_kw.values())
    discharged = sum(max(0.0, kw) for s in steps for kw in s.battery_kw.values())
    dt_h = inputs.step_s / 3600
    shed_kwh = sum(s.shed_kw for s in steps) * dt_h
    peaker_h = sum(any(s.peaker_on.values()) for s in steps) * dt_h
    first = steps[0]
    off = [k for k, on in first.relay_on.items() if not on]
    parts = [
        f"{'Fallback (rule-based) plan' if status == 'fallback' else 'Plan'} for the next "
        f"{hours:g} h: cost {costs.total_eur:.2f} EUR against {baseline.total_eur:.2f} EUR with no "
        f"control (saving {baseline.total_eur - costs.total_eur:.2f} EUR).",
        f"Peak import {peak:.1f} kW (limit {site.grid.import_limit_kw:g} kW); battery charges "
        f"{charged * dt_h:.1f} kWh and discharges {discharged * dt_h:.1f} kWh; "
        f"{shed_kwh:.1f} kWh of load shed; peaker on {peaker_h:.2f} h.",
        f"First step: battery {', '.join(f'{k} {v:+.1f} kW' for k, v in first.battery_kw.items())}"
        f"; relays off: {', '.join(off) or 'none'}.",
    ]
    if diagnosis:
        parts.append(f"Note: {diagnosis}.")
    return " ".join(parts)
