"""Schedules without optimization: no control, and a rule-based controller.

The rule-based one is also the failsafe plan when no MILP solution can be had, so it
keeps to the hard rules on its own: critical loads stay on, SoC stays in its window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from grid.config import SiteConfig
from optimization.inputs import PlanInputs
from optimization.plan import StepSetpoints

# Shed or start the peaker when import would pass this share of the import limit.
SHED_AT_FRACTION = 0.9


def no_control(site: SiteConfig, inputs: PlanInputs) -> list[StepSetpoints]:
    """Every relay on, battery idle, peaker off, PV uncurtailed (but for the export limit)."""
    return _schedule(site, inputs, controlled=False)


def rule_based(site: SiteConfig, inputs: PlanInputs) -> list[StepSetpoints]:
    """Self-consumption battery, shedding by priority above a threshold, peaker last."""
    return _schedule(site, inputs, controlled=True)


def _schedule(site: SiteConfig, inputs: PlanInputs, controlled: bool) -> list[StepSetpoints]:
    dt_h = inputs.step_s / 3600
    soc = {b.id: inputs.initial.soc_fraction[b.id] for b in site.assets.batteries}
    sheddable = sorted(
        (ld for ld in site.assets.loads if not ld.must_serve), key=lambda ld: ld.priority
    )
    threshold = SHED_AT_FRACTION * site.grid.import_limit_kw
    out = []
    for t in range(inputs.steps):
        relay_on = {ld.id: True for ld in site.assets.loads}
        load = sum(inputs.load_kw[ld.id][t] for ld in site.assets.loads)
        pv = sum(inputs.pv_kw[p.id][t] for p in site.assets.pv)
        net = load - pv
        battery_kw = {b.id: 0.0 for b in site.assets.batteries}
        peaker_kw = {g.id: 0.0 for g in site.assets.peakers}
        if controlled:
            for b in site.assets.batteries:
                cap = b.capacity_kwh
                if net < 0:  # surplus PV: charge
                    room_kw = (b.soc_max_fraction - soc[b.id]) * cap / dt_h / b.charge_efficiency
                    power = -min(-net, b.max_charge_kw, max(0.0, room_kw))
                else:
                    stored_kw = (
                        (soc[b.id] - b.soc_min_fraction) * cap / dt_h * (b.discharge_efficiency)
                    )
                    power = min(net, b.max_discharge_kw, max(0.0, stored_kw))
                battery_kw[b.id] = power
                net -= power
                energy = (
                    -power * b.charge_efficiency if power < 0 else -power / b.discharge_efficiency
                ) * dt_h
                soc[b.id] = min(
                    b.soc_max_fraction, max(b.soc_min_fraction, soc[b.id] + energy / cap)
                )
            for ld in sheddable:
                if net <= threshold:
                    break
                relay_on[ld.id] = False
                net -= inputs.load_kw[ld.id][t]
            for g in site.assets.peakers:
                if net > threshold:
                    power = min(g.max_kw, max(g.min_kw, net - threshold))
                    peaker_kw[g.id] = power
                    net -= power
        grid_import = max(net, 0.0)
        spill = max(0.0, -net - site.grid.export_limit_kw)  # PV the inverters must curtail
        pv_limit = {p.id: inputs.pv_kw[p.id][t] for p in site.assets.pv}
        if spill > 0 and pv > 0:
            pv_limit = {k: v * (1 - spill / pv) for k, v in pv_limit.items()}
        shed = sum(inputs.load_kw[k][t] for k, on in relay_on.items() if not on)
        out.append(
            StepSetpoints(
                time=inputs.start + timedelta(seconds=t * inputs.step_s),
                battery_kw=battery_kw,
                soc_fraction=dict(soc),
                relay_on=relay_on,
                peaker_kw=peaker_kw,
                peaker_on={k: v > 0 for k, v in peaker_kw.items()},
                pv_limit_kw=pv_limit,
                pv_available_kw={p.id: inputs.pv_kw[p.id][t] for p in site.assets.pv},
                grid_import_kw=grid_import,
                grid_export_kw=max(0.0, -net) - spill,
                shed_kw=shed,
            )
        )
    return out


def threshold_rule(
    threshold_kw: float, cheap_eur_per_kwh: float
) -> Callable[[SiteConfig, PlanInputs], list[StepSetpoints]]:
    """The operator's classic peak shaver: discharge to hold the import at
    `threshold_kw`, charge from surplus PV, and from the grid (up to the threshold)
    when power costs at most `cheap_eur_per_kwh`. No shedding, no peaker."""

    def rule(site: SiteConfig, inputs: PlanInputs) -> list[StepSetpoints]:
        dt_h = inputs.step_s / 3600
        soc = dict(inputs.initial.soc_fraction)
        out = []
        for t in range(inputs.steps):
            net = sum(v[t] for v in inputs.load_kw.values()) - sum(
                v[t] for v in inputs.pv_kw.values()
            )
            battery_kw = {}
            for b in site.assets.batteries:
                cap = b.capacity_kwh
                room_kw = (b.soc_max_fraction - soc[b.id]) * cap / dt_h / b.charge_efficiency
                stored_kw = (soc[b.id] - b.soc_min_fraction) * cap / dt_h * b.discharge_efficiency
                if net > threshold_kw:
                    power = min(net - threshold_kw, b.max_discharge_kw, max(0.0, stored_kw))
                elif net < 0 or inputs.import_price_eur_per_kwh[t] <= cheap_eur_per_kwh:
                    want = -net if net < 0 else threshold_kw - net
                    power = -min(want, b.max_charge_kw, max(0.0, room_kw))
                else:
                    power = 0.0
                energy = (
                    -power * b.charge_efficiency if power < 0 else -power / b.discharge_efficiency
                ) * dt_h
                soc[b.id] = min(
                    b.soc_max_fraction, max(b.soc_min_fraction, soc[b.id] + energy / cap)
                )
                battery_kw[b.id] = power
                net -= power
            out.append(
                StepSetpoints(
                    time=inputs.start + timedelta(seconds=t * inputs.step_s),
                    battery_kw=battery_kw,
                    soc_fraction=dict(soc),
                    relay_on={ld.id: True for ld in site.assets.loads},
                    peaker_kw={g.id: 0.0 for g in site.assets.peakers},
                    peaker_on={g.id: False for g in site.assets.peakers},
                    pv_limit_kw={p.id: inputs.pv_kw[p.id][t] for p in site.assets.pv},
                    pv_available_kw={p.id: inputs.pv_kw[p.id][t] for p in site.assets.pv},
                    grid_import_kw=max(net, 0.0),
                    grid_export_kw=max(0.0, -net),
                    shed_kw=0.0,
                )
            )
        return out

    return rule
