"""What the dashboard shows, gathered through the same read-only tool functions the MCP
server calls, as one JSON document per refresh.

Forecasts and anomaly verdicts cost model inference; a page refreshing every few
seconds would run them on every poll, so they are kept for `SLOW_TTL_S` wall seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from guardrails.audit import AuditRecord
from guardrails.principals import Caller
from optimization.baselines import SHED_AT_FRACTION
from optimization.plan import CostBreakdown
from tools import plan, review, state
from tools.context import Runtime

SLOW_TTL_S = 30.0
HISTORY_HOURS = 12
HISTORY_WINDOW_S = 300
FORECAST_HOURS = 24
ACTIONS_SHOWN = 25
T = TypeVar("T")


class Series(BaseModel):
    times: list[datetime]
    values: list[float]


class Band(BaseModel):
    times: list[datetime]
    p10: list[float]
    p50: list[float]
    p90: list[float]
    method: str
    note: str


class Limits(BaseModel):
    import_limit_kw: float
    export_limit_kw: float
    threshold_kw: float = Field(description="Where the rule-based controller starts shedding")


class PlanStepView(BaseModel):
    time: datetime
    grid_import_kw: float
    no_control_import_kw: float | None
    battery_kw: float
    soc_fraction: float | None
    peaker_kw: float
    relays_off: list[str]
    executed: str | None = Field(description="Outcome of the dispatch of this step, if any")


class PlanView(BaseModel):
    plan_id: str
    status: str
    created_at: datetime
    expires_at: datetime
    expired: bool
    explanation: str
    diagnosis: str | None
    costs: CostBreakdown
    baseline: CostBreakdown
    saving_eur: float
    steps: list[PlanStepView]


class ActionView(BaseModel):
    seq: int
    time: datetime
    principal: str
    role: str
    action: str
    outcome: str
    detail: str
    refused_by: list[str] = Field(description="rule: detail, for each rule that said no")


class AnomalyView(BaseModel):
    time: datetime
    kind: str
    asset: str | None
    severity: str
    message: str


class TrustView(BaseModel):
    asset: str
    trustworthy: bool
    reason: str


class DashboardData(BaseModel):
    viewer: str
    state: state.GridState
    limits: Limits
    history: dict[str, Series] = Field(description="grid import, load, pv, soc: recent past")
    load_forecast: Band | None
    forecast_error: str | None = None
    plan: PlanView | None
    actions: list[ActionView]
    audit_chain_ok: bool
    anomalies: list[AnomalyView]
    trust: list[TrustView]


class _Cache:
    """Values kept for a while, keyed by name; one computation at a time per name."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            found = self._values.get(key)
            if found is not None and time.monotonic() - found[0] < self._ttl_s:
                return found[1]
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value


class Dashboard:
    """The data behind the page for one runtime; `collect` is called per refresh."""

    def __init__(self, rt: Runtime, slow_ttl_s: float = SLOW_TTL_S) -> None:
        self.rt = rt
        self._slow = _Cache(slow_ttl_s)

    def collect(self, caller: Caller) -> DashboardData:
        rt = self.rt
        grid = rt.site.grid
        band, error = self._slow.get("forecast", lambda: _load_forecast(rt, caller))
        report = self._slow.get(
            "anomalies", lambda: review.anomalies(rt, caller, review.AnomalyRequest(hours=24))
        )
        page = review.audit_log(rt, caller, review.AuditRequest(limit=200))
        # acks are the devices answering commands, shown with the actions, not anomalies
        anomalous = [e for e in report.events if e.kind != "ack"]
        return DashboardData(
            viewer=caller.name,
            state=state.grid_state(rt, caller),
            limits=Limits(
                import_limit_kw=grid.import_limit_kw,
                export_limit_kw=grid.export_limit_kw,
                threshold_kw=round(SHED_AT_FRACTION * grid.import_limit_kw, 3),
            ),
            history=_history(rt, caller),
            load_forecast=band,
            forecast_error=error,
            plan=_latest_plan(rt, page.records, band),
            actions=[_action(r) for r in reversed(page.records[-ACTIONS_SHOWN:])],
            audit_chain_ok=page.chain_ok,
            anomalies=[
                AnomalyView(
                    time=e.time,
                    kind=e.kind,
                    asset=e.asset,
                    severity=e.severity.value,
                    message=e.message,
                )
                for e in reversed(anomalous[-50:])
            ],
            trust=[
                TrustView(asset=t.asset, trustworthy=t.trustworthy, reason=t.reason)
                for t in report.trust_now
            ],
        )


def _history(rt: Runtime, caller: Caller) -> dict[str, Series]:
    a = rt.site.assets
    wanted = {
        "grid_import_kw": ("grid", "power_kw"),
        **{f"load_kw:{ld.id}": (ld.id, "power_kw") for ld in a.loads},
        **{f"pv_kw:{p.id}": (p.id, "power_kw") for p in a.pv},
        **{f"soc_fraction:{b.id}": (b.id, "soc_fraction") for b in a.batteries},
    }
    out = {}
    for key, (asset, quantity) in wanted.items():
        found = state.grid_history(
            rt,
            caller,
            state.HistoryRequest(
                asset=asset, quantity=quantity, hours=HISTORY_HOURS, window_s=HISTORY_WINDOW_S
            ),
        )
        out[key] = Series(times=found.times, values=found.values)
    return out


def _load_forecast(rt: Runtime, caller: Caller) -> tuple[Band | None, str | None]:
    """The site's load forecast, or why there is none (the page says so, not a 500)."""
    try:
        f = plan.forecast(
            rt, caller, plan.ForecastRequest(target="load", horizon_hours=FORECAST_HOURS)
        )
    except Exception as exc:  # shown on the page; the other panels still refresh
        return None, f"{type(exc).__name__}: {exc}"
    return Band(times=f.times, p10=f.p10, p50=f.p50, p90=f.p90, method=f.method, note=f.note), None


def _latest_plan(rt: Runtime, records: list[AuditRecord], band: Band | None) -> PlanView | None:
    recent = rt.plans.recent(1)
    if not recent:
        return None
    stored = recent[0]
    made = stored.plan
    executed = {
        r.arguments.get("step_time"): r.outcome
        for r in records  # oldest first: a later dispatch of a step overrides
        if r.action == "dispatch" and r.arguments.get("plan_id") == made.id
    }
    # No control imports what the loads draw beyond PV. The plan does not keep its load
    # forecast, so this is the load band's median less the plan's PV limit (the
    # available PV wherever the plan does not curtail).
    forecast_at = {t: v for t, v in zip(band.times, band.p50, strict=True)} if band else {}
    steps = []
    for s in made.steps:
        load = forecast_at.get(s.time)
        pv = sum(s.pv_limit_kw.values())
        steps.append(
            PlanStepView(
                time=s.time,
                grid_import_kw=round(s.grid_import_kw - s.grid_export_kw, 3),
                no_control_import_kw=None if load is None else round(load - pv, 3),
                battery_kw=round(sum(s.battery_kw.values()), 3),
                soc_fraction=next(iter(s.soc_fraction.values()), None),
                peaker_kw=round(sum(s.peaker_kw.values()), 3),
                relays_off=[k for k, on in s.relay_on.items() if not on],
                executed=executed.get(s.time.isoformat()),
            )
        )
    return PlanView(
        plan_id=made.id,
        status=made.status,
        created_at=made.created_at,
        expires_at=stored.expires_at,
        expired=stored.expires_at <= rt.clock.now(),
        explanation=made.explanation,
        diagnosis=made.diagnosis,
        costs=made.costs,
        baseline=made.baseline,
        saving_eur=round(made.baseline.total_eur - made.costs.total_eur, 2),
        steps=steps,
    )


def _action(r: AuditRecord) -> ActionView:
    results = r.decision.get("results", [])
    return ActionView(
        seq=r.seq,
        time=r.time,
        principal=r.principal,
        role=r.role,
        action=r.action,
        outcome=r.outcome,
        detail=r.detail,
        refused_by=[
            f"{x.get('rule')}: {x.get('detail')}" for x in results if x.get("allowed") is False
        ],
    )
