"""The MILP: battery, relays, peaker and PV over a horizon, built with PuLP.

Demand charge, prorated: the month's peak is paid once, at the monthly rate. A
24-hour plan cannot know whether a later day will set a higher peak anyway, and
charging it the full rate for every kW above the peak so far makes it burn fuel all
day early in a month. So an increase of the peak above `peak_import_kw_so_far` is
charged at the monthly rate times the horizon's share of a 30-day billing period.

With `soft=True` the constraints that can be missed (terminal SoC, the import and
export limits, serving critical loads) get priced slack variables, so a model that
is infeasible as stated still solves and the slack says what could not be met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pulp

from grid.config import SiteConfig
from optimization.inputs import PlanInputs
from optimization.plan import SWITCH_COST_EUR, demand_rate_eur_per_kw

# Slack is priced far above any real cost so it is used only where nothing else works.
SLACK_EUR_PER_KWH = 1_000.0
WEIGHTS = ("energy", "demand_charge", "degradation", "shed_load", "fuel", "switching")

Var = pulp.LpVariable


@dataclass
class Model:
    prob: pulp.LpProblem
    charge: dict[tuple[str, int], Var] = field(default_factory=dict)
    discharge: dict[tuple[str, int], Var] = field(default_factory=dict)
    soc_kwh: dict[tuple[str, int], Var] = field(default_factory=dict)
    on: dict[tuple[str, int], Var | int] = field(default_factory=dict)
    switch: dict[tuple[str, int], Var] = field(default_factory=dict)
    pv: dict[tuple[str, int], Var | float] = field(default_factory=dict)
    peaker_kw: dict[tuple[str, int], Var] = field(default_factory=dict)
    peaker_on: dict[tuple[str, int], Var] = field(default_factory=dict)
    grid_import: dict[int, Var] = field(default_factory=dict)
    grid_export: dict[int, Var] = field(default_factory=dict)
    peak: Var | None = None
    slacks: dict[str, Var] = field(default_factory=dict)  # name -> slack variable


def check_weights(weights: dict[str, float] | None) -> dict[str, float]:
    out = dict.fromkeys(WEIGHTS, 1.0)
    for key, value in (weights or {}).items():
        if key not in out:
            raise ValueError(
                f"objective_weights: unknown term {key!r}; one of {', '.join(WEIGHTS)}"
            )
        if not 0.0 <= value <= 100.0 or math.isnan(value):
            raise ValueError(f"objective_weights[{key}] = {value} must be within [0, 100]")
        out[key] = value
    return out


def _steps(seconds: float, step_s: int) -> int:
    """Whole steps that cover `seconds` (none for zero, negative or -inf)."""
    return 0 if seconds <= 0 else math.ceil(seconds / step_s)


def build(
    site: SiteConfig,
    inputs: PlanInputs,
    weights: dict[str, float] | None = None,
    soft: bool = False,
) -> Model:
    w = check_weights(weights)
    T = range(inputs.steps)
    dt_h = inputs.step_s / 3600
    m = Model(pulp.LpProblem("gridpilot", pulp.LpMinimize))
    prob = m.prob
    cost: dict[str, list] = {k: [] for k in WEIGHTS}
    penalties = []

    def slack(name: str) -> Var:
        var = pulp.LpVariable(f"slack_{name}", lowBound=0)
        m.slacks[name] = var
        penalties.append(SLACK_EUR_PER_KWH * var)
        return var

    supply = {t: [] for t in T}  # kW into the site bus
    demand = {t: [] for t in T}  # kW out of it

    for b in site.assets.batteries:
        cap = b.capacity_kwh
        soc0 = inputs.initial.soc_fraction[b.id] * cap
        for t in T:
            ch = m.charge[b.id, t] = pulp.LpVariable(f"ch_{b.id}_{t}", 0, b.max_charge_kw)
            dis = m.discharge[b.id, t] = pulp.LpVariable(f"dis_{b.id}_{t}", 0, b.max_discharge_kw)
            mode = pulp.LpVariable(f"mode_{b.id}_{t}", cat="Binary")  # 1: may charge
            prob += ch <= b.max_charge_kw * mode
            prob += dis <= b.max_discharge_kw * (1 - mode)
            soc = m.soc_kwh[b.id, t] = pulp.LpVariable(
                f"soc_{b.id}_{t}", b.soc_min_fraction * cap, b.soc_max_fraction * cap
            )
            before = soc0 if t == 0 else m.soc_kwh[b.id, t - 1]
            prob += soc == before + (b.charge_efficiency * ch - dis / b.discharge_efficiency) * dt_h
            supply[t].append(dis)
            demand[t].append(ch)
            cost["degradation"].append(b.degradation_cost_eur_per_kwh * (ch + dis) * dt_h)
        last = m.soc_kwh[b.id, inputs.steps - 1]
        wanted = (inputs.terminal_soc_fraction or {}).get(b.id)
        # Without a stated target, end no emptier than now (within the SoC window): a
        # plan must not look cheap by spending energy the next plan will miss.
        target = wanted * cap if wanted is not None else min(soc0, b.soc_max_fraction * cap)
        if soft:
            prob += last + slack(f"terminal_soc:{b.id}") >= target, f"terminal_soc_{b.id}"
        else:
            prob += last >= target, f"terminal_soc_{b.id}"

    for p in site.assets.pv:
        for t in T:
            available = inputs.pv_kw[p.id][t]
            if p.curtailable:
                m.pv[p.id, t] = pulp.LpVariable(f"pv_{p.id}_{t}", 0, available)
            else:
                m.pv[p.id, t] = available
            supply[t].append(m.pv[p.id, t])

    dwell_steps = _steps(site.policy.relay_min_dwell_s, inputs.step_s)
    per_hour = max(1, round(3600 / inputs.step_s))
    for ld in site.assets.loads:
        was_on = inputs.initial.relay_on.get(ld.id, True)
        for t in T:
            need = inputs.load_kw[ld.id][t]
            if ld.critical:
                m.on[ld.id, t] = 1
                if soft:
                    unserved = slack(f"critical_load:{ld.id}:{t}")
                    demand[t].append(need - unserved)
                    prob += unserved <= need
                else:
                    demand[t].append(need)
                continue
            on = m.on[ld.id, t] = pulp.LpVariable(f"on_{ld.id}_{t}", cat="Binary")
            sw = m.switch[ld.id, t] = pulp.LpVariable(f"sw_{ld.id}_{t}", 0, 1)
            prev = int(was_on) if t == 0 else m.on[ld.id, t - 1]
            prob += sw >= on - prev
            prob += sw >= prev - on
            demand[t].append(need * on)
            cost["shed_load"].append(need * (1 - on) * ld.value_of_lost_load_eur_per_kwh * dt_h)
            cost["switching"].append(SWITCH_COST_EUR * sw)
        if ld.critical:
            continue
        # no switching again within the dwell, nor before the current state has lasted it
        held_s = inputs.initial.relay_on_since_s.get(ld.id, math.inf)
        locked = _steps(site.policy.relay_min_dwell_s - held_s, inputs.step_s)
        for t in range(min(locked, inputs.steps)):
            prob += m.switch[ld.id, t] == 0
        if dwell_steps > 1:
            for t in T:
                window = [m.switch[ld.id, k] for k in range(t, min(t + dwell_steps, inputs.steps))]
                prob += pulp.lpSum(window) <= 1
        cap_sw = site.policy.relay_max_switches_per_hour
        for t in T:
            window = [m.switch[ld.id, k] for k in range(t, min(t + per_hour, inputs.steps))]
            prob += pulp.lpSum(window) <= cap_sw

    for g in site.assets.peakers:
        up = _steps(g.min_up_s, inputs.step_s)
        down = _steps(g.min_down_s, inputs.step_s)
        was_on = inputs.initial.peaker_on.get(g.id, False)
        state_s = inputs.initial.peaker_state_s.get(g.id)  # unknown: long enough ago
        need_s = g.min_up_s if was_on else g.min_down_s
        held = 0 if state_s is None else _steps(need_s - state_s, inputs.step_s)
        ramp_kw = g.ramp_kw_per_min * inputs.step_s / 60 if g.ramp_kw_per_min else None
        starts = {}
        for t in T:
            y = m.peaker_on[g.id, t] = pulp.LpVariable(f"gon_{g.id}_{t}", cat="Binary")
            pg = m.peaker_kw[g.id, t] = pulp.LpVariable(f"gkw_{g.id}_{t}", 0, g.max_kw)
            prob += pg >= g.min_kw * y
            prob += pg <= g.max_kw * y
            prev_y = int(was_on) if t == 0 else m.peaker_on[g.id, t - 1]
            start = starts[t] = pulp.LpVariable(f"gstart_{g.id}_{t}", 0, 1)
            prob += start >= y - prev_y
            if t < held:  # still inside the minimum up/down time of the current state
                prob += y == int(was_on)
            if ramp_kw is not None and t > 0:
                prob += pg - m.peaker_kw[g.id, t - 1] <= ramp_kw + g.max_kw * start
                prob += m.peaker_kw[g.id, t - 1] - pg <= ramp_kw + g.max_kw * (1 - y)
            supply[t].append(pg)
            cost["fuel"].append(g.fuel_cost_eur_per_kwh * pg * dt_h + g.start_cost_eur * start)
        for t in T:
            if up > 1:
                window = [m.peaker_on[g.id, k] for k in range(t, min(t + up, inputs.steps))]
                prob += pulp.lpSum(window) >= len(window) * starts[t]
            if down > 1:
                prev_y = int(was_on) if t == 0 else m.peaker_on[g.id, t - 1]
                window = [1 - m.peaker_on[g.id, k] for k in range(t, min(t + down, inputs.steps))]
                prob += pulp.lpSum(window) >= len(window) * (prev_y - m.peaker_on[g.id, t])

    m.peak = pulp.LpVariable("peak_import_kw", inputs.initial.peak_import_kw_so_far)
    for t in T:
        imp_cap = site.grid.import_limit_kw
        exp_cap = site.grid.export_limit_kw
        imp = m.grid_import[t] = pulp.LpVariable(f"imp_{t}", 0)
        exp = m.grid_export[t] = pulp.LpVariable(f"exp_{t}", 0)
        if soft:
            prob += imp <= imp_cap + slack(f"import_limit:{t}"), f"import_limit_{t}"
            prob += exp <= exp_cap + slack(f"export_limit:{t}"), f"export_limit_{t}"
        else:
            prob += imp <= imp_cap, f"import_limit_{t}"
            prob += exp <= exp_cap, f"export_limit_{t}"
        prob += imp - exp + pulp.lpSum(supply[t]) == pulp.lpSum(demand[t]), f"balance_{t}"
        prob += m.peak >= imp
        cost["energy"].append(
            (inputs.import_price_eur_per_kwh[t] * imp - inputs.export_price_eur_per_kwh[t] * exp)
            * dt_h
        )
    cost["demand_charge"].append(
        demand_rate_eur_per_kw(site, inputs) * (m.peak - inputs.initial.peak_import_kw_so_far)
    )
    prob += pulp.lpSum(w[k] * pulp.lpSum(v) for k, v in cost.items()) + pulp.lpSum(penalties)
    return m
