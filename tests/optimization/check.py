"""One checker for every solved plan: each hard constraint, step by step."""

from __future__ import annotations

import itertools
import math

from grid.config import SiteConfig
from optimization.inputs import PlanInputs
from optimization.plan import Plan

TOL = 1e-3


def check_plan(site: SiteConfig, inputs: PlanInputs, plan: Plan) -> None:
    dt_h = inputs.step_s / 3600
    soc = dict(inputs.initial.soc_fraction)
    dwell = max(1, math.ceil(site.policy.relay_min_dwell_s / inputs.step_s))
    per_hour = max(1, round(3600 / inputs.step_s))
    switches: dict[str, list[int]] = {}
    relay_before = dict(inputs.initial.relay_on)
    assert len(plan.steps) == inputs.steps
    for t, step in enumerate(plan.steps):
        served = sum(inputs.load_kw[ld.id][t] for ld in site.assets.loads if step.relay_on[ld.id])
        supply = (
            sum(step.pv_limit_kw.values())
            + sum(step.battery_kw.values())
            + sum(step.peaker_kw.values())
        )
        balance = step.grid_import_kw - step.grid_export_kw + supply - served
        assert abs(balance) < 0.01, f"energy balance off by {balance:.3f} kW at step {t}"
        assert step.grid_import_kw <= site.grid.import_limit_kw + TOL
        assert step.grid_export_kw <= site.grid.export_limit_kw + TOL
        for p in site.assets.pv:
            assert -TOL <= step.pv_limit_kw[p.id] <= inputs.pv_kw[p.id][t] + TOL
        for b in site.assets.batteries:
            kw = step.battery_kw[b.id]
            assert -b.max_charge_kw - TOL <= kw <= b.max_discharge_kw + TOL
            energy = -kw * b.charge_efficiency if kw < 0 else -kw / b.discharge_efficiency
            soc[b.id] += energy * dt_h / b.capacity_kwh
            assert abs(soc[b.id] - step.soc_fraction[b.id]) < 1e-3, f"SoC dynamics at {t}"
            assert b.soc_min_fraction - TOL <= step.soc_fraction[b.id] <= b.soc_max_fraction + TOL
        for ld in site.assets.loads:
            on = step.relay_on[ld.id]
            if ld.critical:
                assert on, f"critical load {ld.id} shed at step {t}"
            if on != relay_before[ld.id]:
                switches.setdefault(ld.id, []).append(t)
            relay_before[ld.id] = on
        for g in site.assets.peakers:
            kw = step.peaker_kw[g.id]
            if step.peaker_on[g.id]:
                assert g.min_kw - TOL <= kw <= g.max_kw + TOL
            else:
                assert abs(kw) < TOL
    for load, times in switches.items():
        for a, b in itertools.pairwise(times):
            assert b - a >= dwell, f"{load} switched at steps {a} and {b}: dwell {dwell}"
        for t in times:
            window = [x for x in times if t <= x < t + per_hour]
            assert len(window) <= site.policy.relay_max_switches_per_hour
    for g in site.assets.peakers:
        up = math.ceil(g.min_up_s / inputs.step_s)
        runs, run = [], 0
        for step in plan.steps:
            if step.peaker_on[g.id]:
                run += 1
            elif run:
                runs.append(run)
                run = 0
        # a run still going at the horizon's end may be cut short by the horizon
        assert all(r >= up for r in runs), f"peaker runs {runs} shorter than {up} steps"
