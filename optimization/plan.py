"""The plan: setpoints per asset and step, what they cost, and why.

`costs_of` prices any schedule the same way, so a MILP plan, a baseline and a
closed-loop run are compared on one ruler.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from grid.config import Battery, SiteConfig
from grid.tariff import billing_periods
from optimization.inputs import PlanInputs

# What one relay switching costs: wear on the contactor and a disturbed process.
# Small against energy prices, large enough to stop flapping between equal plans.
SWITCH_COST_EUR = 0.05


def demand_periods(site: SiteConfig, inputs: PlanInputs) -> list[tuple[float, list[int]]]:
    """The steps of each billing period the horizon touches, with the peak that period
    had reached before the horizon: the peak so far for the period holding the start,
    zero for any period that begins inside the horizon."""
    times = [inputs.start + timedelta(seconds=t * inputs.step_s) for t in range(inputs.steps)]
    groups: list[tuple[float, list[int]]] = []
    last = None
    for t, begins in enumerate(billing_periods(site, times)):
        if begins != last:
            groups.append((inputs.initial.peak_import_kw_so_far if not groups else 0.0, []))
            last = begins
        groups[-1][1].append(t)
    return groups


def day_ends(site: SiteConfig, inputs: PlanInputs) -> list[int]:
    """Steps that end at site-local midnight: where an end-of-day SoC floor applies."""
    tz = site.site.tz
    ends = []
    for t in range(inputs.steps):
        local = (inputs.start + timedelta(seconds=(t + 1) * inputs.step_s)).astimezone(tz)
        if local.hour == 0 and local.minute == 0 and local.second == 0:
            ends.append(t)
    return ends


class CostBreakdown(BaseModel):
    energy_eur: float = 0.0  # import paid minus export earned
    demand_charge_eur: float = 0.0  # full rate on each increase of a billing period's peak
    degradation_eur: float = 0.0
    shed_load_eur: float = 0.0  # value of lost load
    fuel_eur: float = 0.0  # peaker fuel and starts
    switching_eur: float = 0.0
    total_eur: float = 0.0


class StepSetpoints(BaseModel):
    time: datetime
    battery_kw: dict[str, float]  # + discharge into the site, - charge
    soc_fraction: dict[str, float]  # at the END of the step
    relay_on: dict[str, bool]  # per load id
    peaker_kw: dict[str, float]
    peaker_on: dict[str, bool]
    pv_limit_kw: dict[str, float]  # planned PV output (= available when not curtailed)
    pv_available_kw: dict[str, float] = {}  # what the plan expected the arrays to give
    grid_import_kw: float
    grid_export_kw: float
    shed_kw: float


# Below this a planned PV output counts as the available output, not a curtailment.
CURTAIL_TOL_KW = 1e-3


def import_cap_kw(site: SiteConfig, peak_so_far_kw: float, step: StepSetpoints) -> float:
    """The grid import a battery in peak-shaving mode holds a plan step to: the billing
    period's peak so far, or the step's planned import where that is higher, never
    above the site's import limit. Below it a forecast error costs nothing extra; above
    it the battery covers the error, so the error moves SoC instead of raising the
    peak that is paid for all month (or breaking the limit)."""
    return min(max(peak_so_far_kw, step.grid_import_kw), site.grid.import_limit_kw)


# The share of a battery's charge rate the peak-shaving reserve counts on to get back to
# the end-of-day floor by midnight; the rest is headroom for the loads under the import
# limit, which a recharge at full rate late in the day would eat.
RESERVE_RECHARGE_SHARE = 0.5


def shave_reserve_soc(site: SiteConfig, step_end: datetime) -> dict[str, float]:
    """The SoC below which peak-shaving mode may not take each battery by `step_end`:
    what a recharge at `RESERVE_RECHARGE_SHARE` of the charge rate brings back to the
    end-of-day floor by the next site-local midnight (the floor itself at midnight),
    never under the SoC minimum. Without it, peak shaving pays for forecast errors out
    of the battery until the day ends below its floor."""
    local = step_end.astimezone(site.site.tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if local.hour == 0 and local.minute == 0 and local.second == 0:
        midnight = local
    hours = (midnight - local).total_seconds() / 3600
    reserve = {}
    for b in site.assets.batteries:
        if b.end_of_day_soc_fraction is None:
            reserve[b.id] = b.soc_min_fraction
            continue
        back = hours * RESERVE_RECHARGE_SHARE * b.max_charge_kw * b.charge_efficiency
        reserve[b.id] = max(b.soc_min_fraction, b.end_of_day_soc_fraction - back / b.capacity_kwh)
    return reserve


def soc_tracking_kw(battery: Battery, soc: float, target: float, dt_h: float) -> float:
    """The battery power (+ discharge, - charge) that takes it from `soc` to `target`
    SoC over a step, within its power ratings: the plan's power while the battery is on
    the plan's SoC path, and the way back to it when it is not."""
    if soc >= target:
        power = (soc - target) * battery.capacity_kwh * battery.discharge_efficiency / dt_h
    else:
        power = -(target - soc) * battery.capacity_kwh / battery.charge_efficiency / dt_h
    return min(battery.max_discharge_kw, max(-battery.max_charge_kw, power))


def pv_caps_kw(site: SiteConfig, step: StepSetpoints) -> dict[str, float | None]:
    """The inverter limit each PV array gets in a step: the planned output where the
    plan curtails a curtailable array, otherwise None (uncapped). A plan's PV output
    is a forecast; capping an array to it would throw away whatever the sun gives
    beyond the forecast, and a night plan would leave the array capped at zero."""
    caps: dict[str, float | None] = {}
    for pv in site.assets.pv:
        planned = step.pv_limit_kw.get(pv.id)
        available = step.pv_available_kw.get(pv.id)
        curtails = (
            pv.curtailable
            and planned is not None
            and available is not None
            and planned < available - CURTAIL_TOL_KW
        )
        caps[pv.id] = round(min(planned, pv.peak_kw), 3) if curtails else None
    return caps


class Plan(BaseModel):
    id: str
    inputs_hash: str
    created_at: datetime
    horizon_steps: int
    step_s: int
    status: Literal["optimal", "feasible", "fallback"]
    solver: str
    solve_time_s: float
    gap: float | None = None  # relative gap to the best possible plan the solver proved
    objective_eur: float
    costs: CostBreakdown
    baseline: CostBreakdown
    steps: list[StepSetpoints]
    peak_import_kw_so_far: float = 0.0  # the billing-period peak the plan started from
    diagnosis: str | None
    explanation: str


def costs_of(site: SiteConfig, inputs: PlanInputs, steps: list[StepSetpoints]) -> CostBreakdown:
    dt_h = inputs.step_s / 3600
    c = CostBreakdown()
    relay_before = dict(inputs.initial.relay_on)
    peaker_before = dict(inputs.initial.peaker_on)
    for t, step in enumerate(steps):
        c.energy_eur += (
            step.grid_import_kw * inputs.import_price_eur_per_kwh[t]
            - step.grid_export_kw * inputs.export_price_eur_per_kwh[t]
        ) * dt_h
        for b in site.assets.batteries:
            c.degradation_eur += abs(step.battery_kw[b.id]) * b.degradation_cost_eur_per_kwh * dt_h
        for ld in site.assets.loads:
            on = step.relay_on[ld.id]
            if not on:
                c.shed_load_eur += (
                    inputs.load_kw[ld.id][t] * ld.value_of_lost_load_eur_per_kwh * dt_h
                )
            if on != relay_before.get(ld.id, True):
                c.switching_eur += SWITCH_COST_EUR
            relay_before[ld.id] = on
        for g in site.assets.peakers:
            c.fuel_eur += step.peaker_kw[g.id] * g.fuel_cost_eur_per_kwh * dt_h
            if step.peaker_on[g.id] and not peaker_before.get(g.id, False):
                c.fuel_eur += g.start_cost_eur
            peaker_before[g.id] = step.peaker_on[g.id]
    rate = site.tariff.demand_charge_eur_per_kw
    for before, period in demand_periods(site, inputs):
        reached = max([before, *(steps[t].grid_import_kw for t in period if t < len(steps))])
        c.demand_charge_eur += rate * (reached - before)
    c.total_eur = (
        c.energy_eur
        + c.demand_charge_eur
        + c.degradation_eur
        + c.shed_load_eur
        + c.fuel_eur
        + c.switching_eur
    )
    return CostBreakdown(**{k: round(v, 4) for k, v in c.model_dump().items()})
