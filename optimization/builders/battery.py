"""Batteries: SoC dynamics, a terminal SoC floor, and charge and discharge never at once.

Charging and discharging at once only loses energy, so a plan does it only where it
has to burn a surplus it can neither export nor curtail. Without `m.battery_modes`
the model leaves out the binary that forbids it; the caller checks the solution and
builds again with the binary only when some step did both (`overlap_steps`).

Families: `soc_balance` per battery and step, `terminal_soc` per battery (soft: slack
`terminal_soc:{battery}`); `day_end_soc` per battery and step ending at site-local
midnight, where it has an end-of-day floor (soft: slack `day_end_soc:{battery}:{t}`);
with `battery_modes`, `charge_mode` and `discharge_mode` per battery and step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.builders import tie_break_eur
from optimization.inputs import PlanInputs
from optimization.plan import day_ends

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    dt_h = inputs.step_s / 3600
    for i, b in enumerate(site.assets.batteries):
        cap = b.capacity_kwh
        soc0 = inputs.initial.soc_fraction[b.id] * cap
        for t in range(inputs.steps):
            ch = m.charge[b.id, t] = pulp.LpVariable(f"ch_{b.id}_{t}", 0, b.max_charge_kw)
            dis = m.discharge[b.id, t] = pulp.LpVariable(f"dis_{b.id}_{t}", 0, b.max_discharge_kw)
            if m.battery_modes:
                mode = pulp.LpVariable(f"mode_{b.id}_{t}", cat="Binary")  # 1: may charge
                m.add("charge_mode", ch <= b.max_charge_kw * mode, b.id, t)
                m.add("discharge_mode", dis <= b.max_discharge_kw * (1 - mode), b.id, t)
            soc = m.soc_kwh[b.id, t] = pulp.LpVariable(
                f"soc_{b.id}_{t}", b.soc_min_fraction * cap, b.soc_max_fraction * cap
            )
            before = soc0 if t == 0 else m.soc_kwh[b.id, t - 1]
            m.add(
                "soc_balance",
                soc == before + (b.charge_efficiency * ch - dis / b.discharge_efficiency) * dt_h,
                b.id,
                t,
            )
            m.supply[t].append(dis)
            m.demand[t].append(ch)
            m.cost["degradation"].append(b.degradation_cost_eur_per_kwh * (ch + dis) * dt_h)
            # among equally cheap plans, charge early and discharge late: energy in hand
            m.tie_break.append(tie_break_eur(t + 1, i) * ch * dt_h)
            m.tie_break.append(tie_break_eur(inputs.steps - t, i) * dis * dt_h)
        if b.end_of_day_soc_fraction is not None:
            floor = b.end_of_day_soc_fraction * cap
            for t in day_ends(site, inputs):
                soc = m.soc_kwh[b.id, t]
                if m.soft:
                    m.add("day_end_soc", soc + m.slack(f"day_end_soc:{b.id}:{t}") >= floor, b.id, t)
                else:
                    m.add("day_end_soc", soc >= floor, b.id, t)
        last = m.soc_kwh[b.id, inputs.steps - 1]
        wanted = (inputs.terminal_soc_fraction or {}).get(b.id)
        # Without a stated target, end no emptier than now (within the SoC window): a
        # plan must not look cheap by spending energy the next plan will miss.
        target = wanted * cap if wanted is not None else min(soc0, b.soc_max_fraction * cap)
        if m.soft:
            m.add("terminal_soc", last + m.slack(f"terminal_soc:{b.id}") >= target, b.id)
        else:
            m.add("terminal_soc", last >= target, b.id)


def overlap_steps(m: Model, site: SiteConfig, tolerance_kw: float = 1e-6) -> list[int]:
    """Steps of a solved model where some battery both charged and discharged."""
    return sorted(
        {
            t
            for b in site.assets.batteries
            for t in range(m.steps)
            if min(m.charge[b.id, t].value() or 0.0, m.discharge[b.id, t].value() or 0.0)
            > tolerance_kw
        }
    )
