"""Forecast, optimize and dispatch: looking ahead, planning, and operating a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from forecasting.schema import Forecast, Target
from grid.config import SiteConfig
from grid.errors import PolicyRefusal
from grid.store import Store
from grid.tariff import billing_period_start
from guardrails.executor import PlanRun
from guardrails.plans import current_step
from guardrails.principals import Caller, Capability
from optimization.inputs import PlanInputs, initial_from_readings, window_inputs
from optimization.plan import CostBreakdown, StepSetpoints
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
    from forecasting.service import forecast as run_forecast  # pandas, XGBoost: on first use

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


class Readings(BaseModel):
    """The site's present state as far as a plan needs it (None: not heard from)."""

    soc_fraction: dict[str, float | None] = {}
    relay_on: dict[str, bool | None] = {}
    peaker_running: dict[str, bool | None] = {}


def inputs_at(
    site: SiteConfig,
    store: Store,
    now: datetime,
    horizon_hours: float,
    readings: Readings,
    models_dir: Path | None,
) -> tuple[PlanInputs, list[str]]:
    """Forecasts made at `now` from the store, the tariff and the site's state, as the
    optimizer wants them: for the live site (`plan_inputs`) and for any past time of
    stored data (`gridpilot optimize plan --at`).

    The forecaster predicts site totals; they are split over loads and PV arrays by
    each one's typical share on recent same-kind days (`forecasting.shares`), by
    nominal or peak power where no history says. A load kept off on all those days
    metered zero and gets no share until it has run again."""
    import pandas as pd  # heavy modules load with the first forecast, not at start-up

    from forecasting.service import asset_history
    from forecasting.service import forecast as run_forecast
    from forecasting.shares import LOOK_BACK_DAYS, split, typical_shares

    step_s = site.site.step_s
    steps = max(1, round(horizon_hours * 3600 / step_s))
    start = _step_start(now, step_s)
    load = run_forecast(site, store, now, "load", steps, registry_dir=models_dir)
    pv = run_forecast(site, store, now, "pv", steps, registry_dir=models_dir)
    period_start = billing_period_start(site, now)
    peaks = store.query(
        site.site.name,
        "grid",
        "power_kw",
        period_start,
        now,
        window_s=max(step_s, int((now - period_start).total_seconds()) + 1),
        aggregate="max",
    )
    initial = initial_from_readings(
        site,
        readings.soc_fraction,
        readings.relay_on,
        readings.peaker_running,
        max([0.0, *(p.value for p in peaks)]),
    )
    past = start - timedelta(days=LOOK_BACK_DAYS)
    index = pd.DatetimeIndex([start + timedelta(seconds=i * step_s) for i in range(steps)])
    tz = site.site.tz

    def shares(weights: dict[str, float]) -> dict[str, np.ndarray]:
        history = asset_history(site, store, list(weights), past, start)
        return typical_shares(history, index, tz, weights)

    inputs = window_inputs(
        site,
        start,
        step_s,
        split(np.array(load.p50), shares({ld.id: ld.nominal_kw for ld in site.assets.loads})),
        split(np.array(pv.p50), shares({p.id: p.peak_kw for p in site.assets.pv})),
        initial,
    )
    return inputs, [f"load: {load.method} ({load.note})", f"pv: {pv.method} ({pv.note})"]


def stored_readings(site: SiteConfig, store: Store, at: datetime) -> Readings:
    """The newest stored SoC of each battery in the day before `at`."""
    soc: dict[str, float | None] = {}
    for b in site.assets.batteries:
        samples = store.query(site.site.name, b.id, "soc_fraction", at - timedelta(days=1), at)
        soc[b.id] = samples[-1].value if samples else None
    return Readings(soc_fraction=soc)


def plan_inputs(rt: Runtime, horizon_hours: float) -> tuple[PlanInputs, list[str]]:
    """`inputs_at` for now, from the live state."""
    snap = rt.snapshot()
    readings = Readings(
        soc_fraction=snap.soc_fraction,
        relay_on=snap.relay_on,
        peaker_running=snap.peaker_running,
    )
    return inputs_at(rt.site, rt.store, rt.clock.now(), horizon_hours, readings, rt.models_dir)


def optimize(rt: Runtime, caller: Caller, req: OptimizeRequest) -> PlanSummary:
    from optimization.solve import plan as solve_plan  # PuLP loads with the first plan

    rt.actuator.require(caller, Capability.PLAN, "optimize", req.model_dump())
    inputs, notes = plan_inputs(rt, req.horizon_hours)
    made = solve_plan(
        rt.site,
        inputs,
        solver=req.solver,
        objective_weights=req.objective_weights,
        now=rt.clock.now(),
    )
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
        saving_eur=round(made.baseline.total_eur - made.costs.total_eur, 2),
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
    """Arm a plan (select-before-operate): the step that covers now is applied at once,
    each later step at its start by the runtime's plan executor, until the plan ends, is
    superseded, the site halts or a step is refused; then devices go back to their
    defaults. `plan_status` follows it."""
    arguments: dict[str, Any] = req.model_dump()
    rt.actuator.require(caller, Capability.ACT, "dispatch", arguments)
    try:
        stored = rt.plans.for_dispatch(req.plan_id, req.plan_hash)
        run, result = rt.executor.arm(caller, stored)
    except PolicyRefusal as refusal:
        if refusal.rule in ("plan_unknown", "plan_expired", "plan_changed"):
            raise rt.actuator.refuse(caller, "dispatch", arguments, refusal) from None
        raise  # a step refusal, audited by the Actuator already
    outcome = outcome_of(rt, caller, "dispatch", arguments, result)
    remaining = len(stored.plan.steps) - stored.plan.steps.index(
        current_step(stored.plan, rt.clock.now())
    )
    outcome.summary = (
        f"{outcome.summary}. Plan {run.plan_id} armed: {remaining - 1} more step(s) will be "
        f"applied at their starts until {run.ends_at:%Y-%m-%d %H:%M}Z; see plan_status"
    )
    return outcome


class PlanStatusRequest(BaseModel):
    plan_id: fields.Id("A dispatched plan's id; default: the latest run", optional=True) = None


def plan_status(rt: Runtime, caller: Caller, req: PlanStatusRequest) -> PlanRun:
    """Where a dispatched plan stands: running, completed, superseded, halted or stopped,
    each step applied with its outcome and audit record, and whether the devices went
    back to their defaults."""
    rt.actuator.require(caller, Capability.READ, "plan_status", req.model_dump())
    run = rt.executor.status(req.plan_id)
    if run is None:
        what = (
            f"plan {req.plan_id!r} was never dispatched"
            if req.plan_id
            else "no plan was dispatched yet"
        )
        raise PolicyRefusal("plan_unknown", f"{what}; optimize, then dispatch the plan_id")
    return run
