"""Forecast, optimize and dispatch: looking ahead, planning, and operating a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from forecasting.service import Forecast, Target, asset_history
from forecasting.service import forecast as run_forecast
from forecasting.shares import LOOK_BACK_DAYS, split, typical_shares
from grid.errors import PolicyRefusal
from grid.tariff import prices_eur_per_kwh
from guardrails.plans import check_drift, current_step, step_actions
from guardrails.principals import Caller, Capability
from optimization.inputs import InitialState, PlanInputs
from optimization.plan import CostBreakdown, StepSetpoints
from optimization.solve import plan as solve_plan
from tools import fields
from tools.act import ActionOutcome, outcome_of
from tools.context import Runtime

MAX_HORIZON_H = 24
CostTerm = Literal["energy", "demand_charge", "degradation", "shed_load", "fuel", "switching"]


class ForecastRequest(BaseModel):
    target: Annotated[
        Target,
        Field(
            description="load, pv, price, net_load (kW or EUR/kWh), or net_load_change_30min (kW)"
        ),
    ]
    horizon_hours: fields.Number("How far ahead, hours (max 24)", ge=0, gt=0, le=MAX_HORIZON_H) = 24


def forecast(rt: Runtime, caller: Caller, req: ForecastRequest) -> Forecast:
    rt.actuator.require(caller, Capability.READ, "forecast", req.model_dump())
    steps = max(1, round(req.horizon_hours * 3600 / rt.site.site.step_s))
    return run_forecast(
        rt.site, rt.store, rt.clock.now(), req.target, steps, registry_dir=rt.models_dir
    )


class OptimizeRequest(BaseModel):
    horizon_hours: fields.Number(
        "Planning horizon, hours (max 24)", ge=0, gt=0, le=MAX_HORIZON_H
    ) = 24
    solver: Annotated[
        Literal["cbc", "highs"], Field(description="MILP solver: cbc (default) or highs")
    ] = "cbc"
    objective_weights: Annotated[
        dict[CostTerm, fields.Number("multiplier", ge=0, le=100)] | None,
        Field(
            description="Optional multipliers (0-100) on cost terms: energy, demand_charge, "
            "degradation, shed_load, fuel, switching (1 = as priced)"
        ),
    ] = None


class PlanSummary(BaseModel):
    plan_id: str
    plan_hash: str = Field(description="Pass to dispatch to be sure the plan is unchanged")
    expires_at: datetime = Field(
        description="Wall-clock time (UTC) after which dispatch refuses the plan, whatever the "
        "site clock says"
    )
    status: Literal["optimal", "feasible", "fallback"]
    explanation: str
    costs: CostBreakdown
    baseline: CostBreakdown = Field(description="Cost with no control over the same forecast")
    saving_eur: float
    diagnosis: str | None
    forecast_notes: list[str]
    next_steps: list[StepSetpoints] = Field(description="The first hour of setpoints")


def _step_start(now: datetime, step_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step_s, UTC)


def plan_inputs(rt: Runtime, horizon_hours: float) -> tuple[PlanInputs, list[str]]:
    """Forecasts, tariff and the site's present state, as the optimizer wants them.

    The forecaster predicts site totals; they are split over loads and PV arrays by
    each one's typical share on recent same-kind days (`forecasting.shares`), by
    nominal or peak power where no history says. A load kept off on all those days
    metered zero and gets no share until it has run again."""
    site, step_s = rt.site, rt.site.site.step_s
    now = rt.clock.now()
    steps = max(1, round(horizon_hours * 3600 / step_s))
    start = _step_start(now, step_s)
    load = run_forecast(site, rt.store, now, "load", steps, registry_dir=rt.models_dir)
    pv = run_forecast(site, rt.store, now, "pv", steps, registry_dir=rt.models_dir)
    times = [start + timedelta(seconds=i * step_s) for i in range(steps)]
    prices = prices_eur_per_kwh(site, times)
    snap = rt.snapshot()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    peaks = rt.store.query(
        site.site.name,
        "grid",
        "power_kw",
        month_start,
        now,
        window_s=max(step_s, int((now - month_start).total_seconds()) + 1),
        aggregate="max",
    )
    initial = InitialState(
        soc_fraction={
            b.id: snap.soc_fraction.get(b.id) or b.initial_soc_fraction
            for b in site.assets.batteries
        },
        relay_on={ld.id: snap.relay_on.get(ld.id) is not False for ld in site.assets.loads},
        peaker_on={g.id: bool(snap.peaker_running.get(g.id)) for g in site.assets.peakers},
        peak_import_kw_so_far=max([0.0, *(p.value for p in peaks)]),
    )
    past = start - timedelta(days=LOOK_BACK_DAYS)
    index, tz = pd.DatetimeIndex(times), site.site.tz

    def shares(weights: dict[str, float]) -> dict[str, np.ndarray]:
        history = asset_history(site, rt.store, list(weights), past, start)
        return typical_shares(history, index, tz, weights)

    inputs = PlanInputs(
        start=start,
        step_s=step_s,
        steps=steps,
        load_kw=split(
            np.array(load.p50), shares({ld.id: ld.nominal_kw for ld in site.assets.loads})
        ),
        pv_kw=split(np.array(pv.p50), shares({p.id: p.peak_kw for p in site.assets.pv})),
        import_price_eur_per_kwh=[p[0] for p in prices],
        export_price_eur_per_kwh=[p[1] for p in prices],
        initial=initial,
    )
    return inputs, [f"load: {load.method} ({load.note})", f"pv: {pv.method} ({pv.note})"]


def optimize(rt: Runtime, caller: Caller, req: OptimizeRequest) -> PlanSummary:
    rt.actuator.require(caller, Capability.PLAN, "optimize", req.model_dump())
    inputs, notes = plan_inputs(rt, req.horizon_hours)
    made = solve_plan(rt.site, inputs, solver=req.solver, objective_weights=req.objective_weights)
    stored = rt.plans.add(made)
    per_hour = max(1, 3600 // made.step_s)
    return PlanSummary(
        plan_id=made.id,
        plan_hash=stored.content_hash,
        expires_at=stored.expires_at,
        status=made.status,
        explanation=made.explanation,
        costs=made.costs,
        baseline=made.baseline,
        saving_eur=round(made.baseline.total - made.costs.total, 2),
        diagnosis=made.diagnosis,
        forecast_notes=notes,
        next_steps=made.steps[:per_hour],
    )


class DispatchRequest(BaseModel):
    plan_id: fields.Id("The plan_id optimize returned")
    plan_hash: Annotated[
        str | None,
        Field(
            strict=True,
            max_length=64,
            description="The plan_hash optimize returned; dispatch refuses if the plan changed",
        ),
    ] = None


def dispatch(rt: Runtime, caller: Caller, req: DispatchRequest) -> ActionOutcome:
    """Apply the step of a plan that covers now (select-before-operate)."""
    arguments: dict[str, Any] = req.model_dump()
    rt.actuator.require(caller, Capability.ACT, "dispatch", arguments)
    try:
        stored = rt.plans.for_dispatch(req.plan_id, req.plan_hash)
        snap = rt.snapshot()
        step = current_step(stored.plan, snap.now)
        check_drift(rt.site, stored.plan, step, snap)
    except PolicyRefusal as refusal:
        raise rt.actuator.refuse(caller, "dispatch", arguments, refusal) from None
    actions = step_actions(rt.site, step, snap, stored.plan.peak_import_kw_so_far)
    arguments["step_time"] = step.time.isoformat()
    result = rt.actuator.request(caller, "dispatch", actions, arguments, direct=False)
    return outcome_of(rt, caller, "dispatch", arguments, result)
