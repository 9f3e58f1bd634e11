"""Peakers: on/off with a minimum output, starts priced, ramp limits, minimum up and
down times (also for the state the peaker is in now).

The on/off state is the only binary. Starts and stops are continuous, tied to it by
`transition` (`on[t] - on[t-1] = start[t] - stop[t]`) and bounded by the minimum up
and down times in the Rajan-Takriti form (`min_up`: a start within the last up-time
steps means on; `min_down` likewise), which is the convex hull of those rules: the
relaxation is tight and starts come out 0 or 1 by themselves.

Families per peaker and step: `min_kw`, `max_kw`, `transition`, `held` (still inside
the current state's minimum time), `ramp_up`, `ramp_down` (only where a step's ramp is
less than the whole range), `min_up`, `min_down`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.builders import steps_covering, tie_break_eur
from optimization.inputs import PlanInputs

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    T = range(inputs.steps)
    dt_h = inputs.step_s / 3600
    for i, g in enumerate(site.assets.peakers):
        up = max(1, steps_covering(g.min_up_s, inputs.step_s))
        down = max(1, steps_covering(g.min_down_s, inputs.step_s))
        was_on = inputs.initial.peaker_on.get(g.id, False)
        state_s = inputs.initial.peaker_state_s.get(g.id)  # unknown: long enough ago
        need_s = g.min_up_s if was_on else g.min_down_s
        held = 0 if state_s is None else steps_covering(need_s - state_s, inputs.step_s)
        ramp_kw = g.ramp_kw_per_min * inputs.step_s / 60 if g.ramp_kw_per_min else None
        if ramp_kw is not None and ramp_kw >= g.max_kw:
            ramp_kw = None  # a step's ramp covers the whole range: the rows cannot bind
        starts, stops = [], []
        for t in T:
            y = m.peaker_on[g.id, t] = pulp.LpVariable(f"gon_{g.id}_{t}", cat="Binary")
            pg = m.peaker_kw[g.id, t] = pulp.LpVariable(f"gkw_{g.id}_{t}", 0, g.max_kw)
            start = pulp.LpVariable(f"gstart_{g.id}_{t}", 0, 1)
            stop = pulp.LpVariable(f"gstop_{g.id}_{t}", 0, 1)
            starts.append(start)
            stops.append(stop)
            m.add("min_kw", pg >= g.min_kw * y, g.id, t)
            m.add("max_kw", pg <= g.max_kw * y, g.id, t)
            prev_y = int(was_on) if t == 0 else m.peaker_on[g.id, t - 1]
            m.add("transition", y - prev_y == start - stop, g.id, t)
            m.add("min_up", pulp.lpSum(starts[max(0, t - up + 1) :]) <= y, g.id, t)
            m.add("min_down", pulp.lpSum(stops[max(0, t - down + 1) :]) <= 1 - y, g.id, t)
            if t < held:  # still inside the minimum up/down time of the current state
                m.add("held", y == int(was_on), g.id, t)
            if ramp_kw is not None and t > 0:
                before = m.peaker_kw[g.id, t - 1]
                m.add("ramp_up", pg - before <= ramp_kw + g.max_kw * start, g.id, t)
                m.add("ramp_down", before - pg <= ramp_kw + g.max_kw * stop, g.id, t)
            m.supply[t].append(pg)
            m.cost["fuel"].append(g.fuel_cost_eur_per_kwh * pg * dt_h + g.start_cost_eur * start)
            # among equally cheap plans, run as late as possible
            m.tie_break.append(tie_break_eur(inputs.steps - t, i) * pg * dt_h)
