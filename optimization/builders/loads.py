"""Loads behind relays: critical ones always served, sheddable ones on or off with
each switching counted, held for the dwell and capped per hour.

A relay's state is the only binary. Switching on and off are continuous variables
tied to it by `switching` (`on[t] - on[t-1] = up[t] - down[t]`); the dwell is stated
as a minimum up and down time (`dwell_on`: a relay switched on within the last dwell
steps is on; `dwell_off` likewise), which is the convex hull of the rule, so `up` and
`down` come out 0 or 1 without being declared binary.

Families per sheddable load and step: `switching`, `locked` (the current state has not
lasted the dwell yet), `dwell_on`, `dwell_off`, `switches_per_hour` (only where the
dwell alone does not already keep to the cap). Soft: `critical_unserved` per critical
load and step (slack `critical_load:{load}:{t}`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.builders import steps_covering, tie_break_eur
from optimization.inputs import PlanInputs
from optimization.plan import SWITCH_COST_EUR

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    T = range(inputs.steps)
    dt_h = inputs.step_s / 3600
    dwell = max(1, steps_covering(site.policy.relay_min_dwell_s, inputs.step_s))
    per_hour = max(1, round(3600 / inputs.step_s))
    cap_sw = site.policy.relay_max_switches_per_hour
    # with switchings at least `dwell` steps apart, an hour holds at most this many
    cap_needed = math.ceil(per_hour / dwell) > cap_sw
    for i, ld in enumerate(site.assets.loads):
        was_on = inputs.initial.relay_on.get(ld.id, True)
        if ld.must_serve:
            for t in T:
                need = inputs.load_kw[ld.id][t]
                m.on[ld.id, t] = 1
                if m.soft:
                    unserved = m.slack(f"critical_load:{ld.id}:{t}")
                    m.demand[t].append(need - unserved)
                    m.add("critical_unserved", unserved <= need, ld.id, t)
                else:
                    m.demand[t].append(need)
            continue
        ups, downs = [], []
        for t in T:
            need = inputs.load_kw[ld.id][t]
            on = m.on[ld.id, t] = pulp.LpVariable(f"on_{ld.id}_{t}", cat="Binary")
            up = pulp.LpVariable(f"up_{ld.id}_{t}", 0, 1)
            down = pulp.LpVariable(f"down_{ld.id}_{t}", 0, 1)
            ups.append(up)
            downs.append(down)
            prev = int(was_on) if t == 0 else m.on[ld.id, t - 1]
            m.add("switching", on - prev == up - down, ld.id, t)
            m.switch[ld.id, t] = up + down
            m.add("dwell_on", pulp.lpSum(ups[max(0, t - dwell + 1) :]) <= on, ld.id, t)
            m.add("dwell_off", pulp.lpSum(downs[max(0, t - dwell + 1) :]) <= 1 - on, ld.id, t)
            m.demand[t].append(need * on)
            m.cost["shed_load"].append(need * (1 - on) * ld.value_of_lost_load_eur_per_kwh * dt_h)
            m.cost["switching"].append(SWITCH_COST_EUR * (up + down))
            # among equally cheap plans, switch as late as possible (and loads in order)
            m.tie_break.append(tie_break_eur(inputs.steps - t, i) * (up + down))
        # the current state must last the dwell before the relay may switch again
        held_s = inputs.initial.relay_on_since_s.get(ld.id, math.inf)
        locked = steps_covering(site.policy.relay_min_dwell_s - held_s, inputs.step_s)
        for t in range(min(locked, inputs.steps)):
            m.add("locked", m.on[ld.id, t] == int(was_on), ld.id, t)
        if cap_needed:
            for t in T:
                window = [m.switch[ld.id, k] for k in range(t, min(t + per_hour, inputs.steps))]
                m.add("switches_per_hour", pulp.lpSum(window) <= cap_sw, ld.id, t)
