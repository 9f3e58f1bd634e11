"""Closed loop: re-plan on a receding horizon and apply each plan's first hour to the
truth (the site's profiles), as a controller on a live site would.

The truth is `grid.profiles`; what the planner sees of the future is whatever the
`Forecaster` gives (the truth itself for perfect foresight). Every controller's
realised schedule is priced by `costs_of` over the whole period, on one ruler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel

from grid.config import SiteConfig
from grid.profiles import SiteProfiles, generate
from grid.tariff import billing_period_start
from optimization.baselines import no_control, rule_based, threshold_rule
from optimization.inputs import PlanInputs, initial_state, inputs_from_profiles, profile_window
from optimization.plan import (
    CostBreakdown,
    StepSetpoints,
    costs_of,
    day_ends,
    import_cap_kw,
    pv_caps_kw,
    shave_reserve_soc,
    soc_tracking_kw,
)
from optimization.solve import plan
from optimization.solvers import Solver

# A realised SoC this far under an end-of-day floor counts as missing it.
SOC_TOL = 1e-3


class Seen(NamedTuple):
    """What a forecaster lets the planner see of the next steps."""

    load_kw: dict[str, list[float]]  # per load
    pv_kw: dict[str, list[float]]  # per PV array


# (truth, first step, steps) -> what the planner sees of those steps
Forecaster = Callable[[SiteProfiles, int, int], Seen]


class LoopResult(BaseModel):
    controller: str
    costs: CostBreakdown
    peak_import_kw: float
    shed_kwh: float
    switchings: int
    import_limit_breaches: int  # steps where realised import exceeded the limit
    days_below_soc_floor: int = 0  # local midnights a battery missed its end-of-day floor
    solves: int = 0
    fallbacks: int = 0


def perfect_foresight(truth: SiteProfiles, t: int, n: int) -> Seen:
    return Seen(
        {k: list(v[t : t + n]) for k, v in truth.load_kw.items()},
        {k: list(v[t : t + n]) for k, v in truth.pv_kw.items()},
    )


def seasonal_naive(truth: SiteProfiles, t: int, n: int) -> Seen:
    """Same time yesterday (the truth one day back), per load and PV array."""
    day = 86_400 // truth.step_s

    def back(series) -> list[float]:
        return [float(series[max(0, i - day)]) for i in range(t, t + n)]

    return Seen(
        {k: back(v) for k, v in truth.load_kw.items()},
        {k: back(v) for k, v in truth.pv_kw.items()},
    )


def truth_for(
    site: SiteConfig,
    start: datetime,
    days: float,
    seed: int,
    lookahead_steps: int,
    noisy: bool = True,
) -> SiteProfiles:
    """The period plus a day before it (for naive forecasts) and the last horizon after."""
    day = 86_400 // site.site.step_s
    steps = int(days * day) + day + lookahead_steps
    return generate(site, start - timedelta(days=1), steps, seed=seed, noisy=noisy)


def noise_free(
    site: SiteConfig, start: datetime, days: float, seed: int = 0, horizon_steps: int = 48
) -> Forecaster:
    """The best a forecaster could do: the truth without its step-to-step noise, each
    day's cloudiness known. What MPC captures with it is the ceiling for forecasts."""
    quiet = truth_for(site, start, days, seed, horizon_steps, noisy=False)
    return lambda truth, t, n: perfect_foresight(quiet, t, n)


def _batteries(
    site: SiteConfig, wanted_kw: dict[str, float], soc: dict[str, float], dt_h: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Battery power (+ discharge) and SoC after the step, within what the cells hold."""
    battery_kw, new_soc = {}, {}
    for b in site.assets.batteries:
        power, cap = wanted_kw[b.id], b.capacity_kwh
        if power > 0:  # the cells cannot give more than is above the minimum
            power = max(
                0.0,
                min(power, (soc[b.id] - b.soc_min_fraction) * cap / dt_h * b.discharge_efficiency),
            )
            delta = -power / b.discharge_efficiency
        else:
            room = (b.soc_max_fraction - soc[b.id]) * cap / dt_h / b.charge_efficiency
            power = min(0.0, max(power, -room))
            delta = -power * b.charge_efficiency
        battery_kw[b.id] = power
        new_soc[b.id] = soc[b.id] + delta * dt_h / cap
    return battery_kw, new_soc


def realise(
    site: SiteConfig,
    truth: SiteProfiles,
    t: int,
    wanted: StepSetpoints,
    soc: dict[str, float],
    import_cap_kw: float | None = None,
) -> StepSetpoints:
    """What happens when a planned step meets the true load and PV.

    The battery is driven toward the plan's SoC at the end of the step
    (`soc_tracking_kw`), so a step that starts off the plan's path steers back to it
    and the planner's end-of-day SoC holds between re-plans. The rest is live
    dispatch's rule (`guardrails.plans.step_actions`): PV is capped only where the plan
    curtails a curtailable array (`pv_caps_kw`), and the cap is the one `import_cap_kw`
    gives. With `import_cap_kw`, the battery inverters run in peak-shaving mode, as the
    field twins do (edge/devices/battery.py): they discharge more (or charge less) than
    the setpoint when the true import would pass the cap, so a forecast error moves SoC
    rather than the billing-period peak; up to the import limit only down to
    `shave_reserve_soc` (what the end-of-day floor needs), beyond it as far as the
    cells go, since the limit comes first. The other way round they follow the plan's
    import: where the site would import less than planned they give up planned
    discharge, so energy a load over-forecast did not need stays in the cells."""
    dt_h = truth.step_s / 3600
    served = sum(
        float(truth.load_kw[ld.id][t]) for ld in site.assets.loads if wanted.relay_on[ld.id]
    )
    caps = pv_caps_kw(site, wanted)
    pv_kw = {p.id: min(float(truth.pv_kw[p.id][t]), caps[p.id] or math.inf) for p in site.assets.pv}
    rest = served - sum(pv_kw.values()) - sum(wanted.peaker_kw.values())
    asked = {
        b.id: soc_tracking_kw(b, soc[b.id], wanted.soc_fraction[b.id], dt_h)
        for b in site.assets.batteries
    }
    battery_kw, new_soc = _batteries(site, asked, soc, dt_h)
    if import_cap_kw is not None:  # the plan's import is met: discharge only what it needs
        spare = wanted.grid_import_kw - (rest - sum(battery_kw.values()))
        for b in site.assets.batteries:
            less = max(0.0, min(spare, asked[b.id]))
            asked[b.id] -= less
            spare -= less
        battery_kw, new_soc = _batteries(site, asked, soc, dt_h)
    excess = rest - sum(battery_kw.values()) - (import_cap_kw or 0.0)
    if import_cap_kw is not None and excess > 1e-9:
        reserve = shave_reserve_soc(site, truth.times[t] + timedelta(seconds=truth.step_s))
        for b in site.assets.batteries:
            # up to the import limit only above the reserve; beyond it, all the cells hold
            over_limit = excess - (site.grid.import_limit_kw - import_cap_kw)
            kept = soc_tracking_kw(b, soc[b.id], reserve[b.id], dt_h) - asked[b.id]
            room = max(0.0, kept, min(over_limit, b.max_discharge_kw - asked[b.id]))
            more = max(0.0, min(excess, room))
            asked[b.id] += more
            excess -= more
        battery_kw, new_soc = _batteries(site, asked, soc, dt_h)
    net = rest - sum(battery_kw.values())
    spill = max(0.0, -net - site.grid.export_limit_kw)  # inverters curtail what cannot go out
    shed = sum(float(truth.load_kw[k][t]) for k, on in wanted.relay_on.items() if not on)
    return StepSetpoints(
        time=truth.times[t],
        battery_kw=battery_kw,
        soc_fraction=new_soc,
        relay_on=dict(wanted.relay_on),
        peaker_kw=dict(wanted.peaker_kw),
        peaker_on=dict(wanted.peaker_on),
        pv_limit_kw=pv_kw,
        pv_available_kw={p.id: float(truth.pv_kw[p.id][t]) for p in site.assets.pv},
        grid_import_kw=max(0.0, net),
        grid_export_kw=max(0.0, -net) - spill,
        shed_kw=shed,
    )


def run(
    site: SiteConfig,
    start: datetime,
    days: float,
    forecaster: Forecaster | None,
    *,
    seed: int = 0,
    horizon_steps: int = 48,
    replan_every: int = 4,
    solver: Solver = "cbc",
    name: str = "mpc",
    peak_shaving: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> LoopResult:
    """One controller over `days` of the simulated site (see `run_on`)."""
    truth = truth_for(site, start, days, seed, horizon_steps)
    day = 86_400 // site.site.step_s
    return run_on(
        site,
        truth,
        day,
        day + int(days * day),
        forecaster,
        horizon_steps=horizon_steps,
        replan_every=replan_every,
        solver=solver,
        name=name,
        peak_shaving=peak_shaving,
        progress=progress,
    )


Rule = Callable[[SiteConfig, PlanInputs], list[StepSetpoints]]


def period_peak(site: SiteConfig, truth: SiteProfiles, done: list[StepSetpoints], t: int) -> float:
    """The peak import so far in the billing period that holds step t."""
    begins = billing_period_start(site, truth.times[t])
    return max(
        [0.0, *(s.grid_import_kw for s in done if s.time >= begins)],
    )


def run_on(
    site: SiteConfig,
    truth: SiteProfiles,
    first: int,
    last: int,
    forecaster: Forecaster | None,
    *,
    rule: Rule = rule_based,
    horizon_steps: int = 48,
    replan_every: int = 4,
    solver: Solver = "cbc",
    name: str = "mpc",
    peak_shaving: bool = True,
    peak_margin_kw: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> LoopResult:
    """One controller over steps first..last of the truth: `forecaster=None` runs `rule`
    step by step; otherwise MPC re-planning every `replan_every` steps on what the
    forecaster shows it. Each applied step meets the truth through `realise`, the rule
    live dispatch follows; with `peak_shaving`, its import is capped as a dispatched
    plan caps it (`optimization.plan.import_cap_kw`). With `peak_margin_kw` the
    planner sees the period's peak that much lower than it is, so a plan keeps headroom
    under it for the forecast's error (the cap stays at the true peak)."""
    state = initial_state(site)
    soc = dict(state.soc_fraction)
    relay_since = {ld.id: 1e9 for ld in site.assets.loads}
    peaker_since = {g.id: 1e9 for g in site.assets.peakers}
    done: list[StepSetpoints] = []
    solves = fallbacks = 0
    made = None  # the previous plan: the next solve starts from its decisions
    t = first
    every = replan_every if forecaster else 1
    while t < last:
        n = min(horizon_steps, len(truth.times) - t)
        now_state = state.model_copy(
            update={
                "soc_fraction": dict(soc),
                "relay_on_since_s": dict(relay_since),
                "peaker_state_s": dict(peaker_since),
                "peak_import_kw_so_far": max(
                    0.0, period_peak(site, truth, done, t) - peak_margin_kw
                ),
            }
        )
        window = profile_window(site, truth, t, n, now_state)
        if forecaster is None:
            steps = rule(site, window)
        else:
            seen = forecaster(truth, t, n)
            made = plan(
                site,
                window.model_copy(update=seen._asdict()),
                solver=solver,
                time_limit_s=30,
                warm_start=made,
            )
            solves += 1
            fallbacks += made.status == "fallback"
            steps = made.steps
        for k in range(min(every, last - t)):
            peak = period_peak(site, truth, done, t + k)
            cap = import_cap_kw(site, peak, steps[k]) if peak_shaving else None
            real = realise(site, truth, t + k, steps[k], soc, cap)
            soc = dict(real.soc_fraction)
            for ld in site.assets.loads:
                same = real.relay_on[ld.id] == state.relay_on[ld.id]
                relay_since[ld.id] = relay_since[ld.id] + truth.step_s if same else 0.0
            for g in site.assets.peakers:
                same = real.peaker_on[g.id] == state.peaker_on.get(g.id, False)
                peaker_since[g.id] = peaker_since[g.id] + truth.step_s if same else 0.0
            state = state.model_copy(
                update={"relay_on": dict(real.relay_on), "peaker_on": dict(real.peaker_on)}
            )
            done.append(real)
        t += min(every, last - t)
        if progress is not None:
            progress(t - first, last - first)
    return summarise(site, truth, first, done, name, solves, fallbacks)


def optimum(
    site: SiteConfig, truth: SiteProfiles, first: int, last: int, solver: Solver = "cbc"
) -> LoopResult:
    """Perfect foresight over the whole period in one MILP: the most any controller
    could save, the denominator of every share of the saving."""
    window = profile_window(site, truth, first, last - first, initial_state(site))
    made = plan(site, window, solver=solver, time_limit_s=300)
    soc = dict(window.initial.soc_fraction)
    done = []
    for k, step in enumerate(made.steps):
        real = realise(site, truth, first + k, step, soc)
        soc = dict(real.soc_fraction)
        done.append(real)
    return summarise(site, truth, first, done, "perfect-foresight optimum", 1, 0)


def summarise(
    site: SiteConfig,
    truth: SiteProfiles,
    first: int,
    done: list[StepSetpoints],
    name: str,
    solves: int = 0,
    fallbacks: int = 0,
) -> LoopResult:
    period = profile_window(site, truth, first, len(done), initial_state(site))
    relay_before = dict(period.initial.relay_on)
    switchings = 0
    for step in done:
        for k, on in step.relay_on.items():
            switchings += on != relay_before[k]
            relay_before[k] = on
    floors = {
        b.id: b.end_of_day_soc_fraction
        for b in site.assets.batteries
        if b.end_of_day_soc_fraction is not None
    }
    below = sum(
        any(done[t].soc_fraction[k] < f - SOC_TOL for k, f in floors.items())
        for t in day_ends(site, period)
        if t < len(done)
    )
    return LoopResult(
        controller=name,
        costs=costs_of(site, period, done),
        days_below_soc_floor=below,
        peak_import_kw=max(s.grid_import_kw for s in done),
        shed_kwh=sum(s.shed_kw for s in done) * truth.step_s / 3600,
        switchings=switchings,
        import_limit_breaches=sum(
            s.grid_import_kw > site.grid.import_limit_kw + 1e-6 for s in done
        ),
        solves=solves,
        fallbacks=fallbacks,
    )


def no_control_result(
    site: SiteConfig, start: datetime, days: float, seed: int = 0, horizon_steps: int = 48
) -> LoopResult:
    truth = truth_for(site, start, days, seed, horizon_steps)
    day = 86_400 // site.site.step_s
    period = inputs_from_profiles(site, truth, initial_state(site))
    steps = no_control(site, period)[day : day + int(days * day)]
    return summarise(site, truth, day, steps, "no control")


def no_control_on(site: SiteConfig, truth: SiteProfiles, first: int, last: int) -> LoopResult:
    period = profile_window(site, truth, first, last - first, initial_state(site))
    return summarise(site, truth, first, no_control(site, period), "no control")


def tuned_threshold_rule(
    site: SiteConfig, truth: SiteProfiles, first: int, last: int
) -> tuple[Rule, float, float]:
    """The threshold rule with the threshold and cheap price that cost least over steps
    first..last (the training days): (rule, threshold kW, cheap EUR/kWh)."""
    net = truth.net_load_kw[first:last]
    prices = truth.import_price_eur_per_kwh[first:last]
    best: tuple[float, float, float] | None = None
    for threshold in np.quantile(net, [0.5, 0.7, 0.8, 0.9, 0.95, 0.98]):
        for cheap in sorted({float(np.quantile(prices, 0.25)), float(prices.min()) - 1.0}):
            result = run_on(
                site,
                truth,
                first,
                last,
                None,
                rule=threshold_rule(threshold, cheap),
                horizon_steps=1,
            )
            if best is None or result.costs.total_eur < best[0]:
                best = (result.costs.total_eur, float(threshold), cheap)
    assert best is not None
    return threshold_rule(best[1], best[2]), best[1], best[2]


class Comparison(BaseModel):
    controller: str
    total_eur: float
    energy_eur: float
    demand_eur: float
    peak_import_kw: float
    import_limit_breaches: int
    days_below_soc_floor: int
    pf_saving_share: float  # of the perfect-foresight optimum's saving over no control
    solves: int = 0
    fallbacks: int = 0

    def cells(self) -> list[str]:
        """The figures as a table shows them, after the controller's name."""
        return [
            f"{self.total_eur:.2f}",
            f"{self.energy_eur:.2f}",
            f"{self.demand_eur:.2f}",
            f"{self.peak_import_kw:.1f}",
            str(self.import_limit_breaches),
            str(self.days_below_soc_floor),
            f"{self.pf_saving_share:.0%}",
        ]


def compare(
    site: SiteConfig,
    truth: SiteProfiles,
    train_first: int,
    first: int,
    last: int,
    forecaster: Forecaster,
    *,
    horizon_steps: int,
    replan_every: int,
    solver: Solver = "cbc",
    peak_margin_kw: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> list[Comparison]:
    """The five controllers over steps first..last, priced as the bill prices them:
    no control; the threshold rule tuned on (the last week of) train_first..first; MPC
    on `forecaster`'s forecasts; MPC with a perfect forecast; the perfect-foresight
    optimum. The forecast MPC plans `peak_margin_kw` under the period's peak so far
    (see `run_on`)."""
    say = progress or (lambda name: None)
    results = [no_control_on(site, truth, first, last)]
    say("threshold rule (tuning on the training days)")
    # the last week of training is enough to tune two numbers, and four times quicker
    week = 7 * 86_400 // site.site.step_s
    rule, threshold, cheap = tuned_threshold_rule(
        site, truth, max(train_first, first - week), first
    )
    rule_result = run_on(site, truth, first, last, None, rule=rule, horizon_steps=1)
    results.append(
        rule_result.model_copy(
            update={"controller": f"threshold rule ({threshold:.1f} kW, <= {cheap:.3f} EUR/kWh)"}
        )
    )
    for name, seen, margin in (
        ("MPC, gridpilot forecasts", forecaster, peak_margin_kw),
        ("MPC, perfect forecast", perfect_foresight, 0.0),
    ):
        say(name)
        results.append(
            run_on(
                site,
                truth,
                first,
                last,
                seen,
                horizon_steps=horizon_steps,
                replan_every=replan_every,
                solver=solver,
                name=name,
                peak_margin_kw=margin,
            )
        )
    say("perfect-foresight optimum")
    results.append(optimum(site, truth, first, last, solver))
    base, best = results[0].costs.total_eur, results[-1].costs.total_eur
    return [
        Comparison(
            controller=r.controller,
            total_eur=r.costs.total_eur,
            energy_eur=r.costs.energy_eur,
            demand_eur=r.costs.demand_charge_eur,
            peak_import_kw=round(r.peak_import_kw, 3),
            import_limit_breaches=r.import_limit_breaches,
            days_below_soc_floor=r.days_below_soc_floor,
            pf_saving_share=round((base - r.costs.total_eur) / (base - best), 4)
            if base - best > 1e-9
            else 0.0,
            solves=r.solves,
            fallbacks=r.fallbacks,
        )
        for r in results
    ]
