"""Loads behind relays: critical ones always served, sheddable ones on or off with
switching counted, held for the dwell and capped per hour.

Families per sheddable load and step: `switch_on`, `switch_off` (the switching
indicator), `locked` (the current state has not lasted the dwell yet), `dwell` (at most
one switching within the dwell), `switches_per_hour`. Soft: `critical_unserved` per
critical load and step (slack `critical_load:{load}:{t}`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.builders import steps_covering
from optimization.inputs import PlanInputs
from optimization.plan import SWITCH_COST_EUR

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    T = range(inputs.steps)
    dt_h = inputs.step_s / 3600
    dwell_steps = steps_covering(site.policy.relay_min_dwell_s, inputs.step_s)
    per_hour = max(1, round(3600 / inputs.step_s))
    for ld in site.assets.loads:
        was_on = inputs.initial.relay_on.get(ld.id, True)
        for t in T:
            need = inputs.load_kw[ld.id][t]
            if ld.must_serve:
                m.on[ld.id, t] = 1
                if m.soft:
                    unserved = m.slack(f"critical_load:{ld.id}:{t}")
                    m.demand[t].append(need - unserved)
                    m.add("critical_unserved", unserved <= need, ld.id, t)
                else:
                    m.demand[t].append(need)
                continue
            on = m.on[ld.id, t] = pulp.LpVariable(f"on_{ld.id}_{t}", cat="Binary")
            sw = m.switch[ld.id, t] = pulp.LpVariable(f"sw_{ld.id}_{t}", 0, 1)
            prev = int(was_on) if t == 0 else m.on[ld.id, t - 1]
            m.add("switch_on", sw >= on - prev, ld.id, t)
            m.add("switch_off", sw >= prev - on, ld.id, t)
            m.demand[t].append(need * on)
            m.cost["shed_load"].append(need * (1 - on) * ld.value_of_lost_load_eur_per_kwh * dt_h)
            m.cost["switching"].append(SWITCH_COST_EUR * sw)
        if ld.must_serve:
            continue
        # no switching again within the dwell, nor before the current state has lasted it
        held_s = inputs.initial.relay_on_since_s.get(ld.id, math.inf)
        locked = steps_covering(site.policy.relay_min_dwell_s - held_s, inputs.step_s)
        for t in range(min(locked, inputs.steps)):
            m.add("locked", m.switch[ld.id, t] == 0, ld.id, t)
        if dwell_steps > 1:
            for t in T:
                window = [m.switch[ld.id, k] for k in range(t, min(t + dwell_steps, inputs.steps))]
                m.add("dwell", pulp.lpSum(window) <= 1, ld.id, t)
        cap_sw = site.policy.relay_max_switches_per_hour
        for t in T:
            window = [m.switch[ld.id, k] for k in range(t, min(t + per_hour, inputs.steps))]
            m.add("switches_per_hour", pulp.lpSum(window) <= cap_sw, ld.id, t)
