"""Carrying out a dispatched plan, step by step, through the one Actuator.

`dispatch(plan_id)` arms a plan; the runtime then calls `tick` often (every second
or so), and each step is applied at its start: re-checked for drift against the live
state, turned into actions (`step_actions`), and sent through the Actuator with the
full policy, audited like any request. The run ends when the plan's last step ends,
when another plan is dispatched (superseded), when the site is halted, or when a step
is refused (drift or a rule). Then the devices go back to their defaults: PV uncapped,
batteries at zero in their own mode (no import cap), so nothing a plan set outlives
it (a night plan's PV limit must not be there in the morning).

One plan runs at a time: a site has one set of devices.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from grid.clock import Clock
from grid.config import SiteConfig
from grid.errors import GridpilotError, PolicyRefusal
from guardrails.actuator import ActuationResult, Actuator
from guardrails.plans import StoredPlan, check_drift, current_step, step_actions
from guardrails.policy import Action, SiteSnapshot
from guardrails.principals import Caller

log = logging.getLogger(__name__)

RunStatus = Literal["running", "completed", "superseded", "halted", "stopped"]
KEPT_RUNS = 50


class StepRecord(BaseModel):
    time: datetime  # the step's start
    outcome: str  # executed, failed, refused, awaiting_confirmation
    audit_seq: int | None = None
    detail: str = ""


class PlanRun(BaseModel):
    plan_id: str
    principal: str
    status: RunStatus
    armed_at: datetime
    ends_at: datetime  # end of the plan's last step
    steps: list[StepRecord] = []
    reason: str | None = None  # why it is no longer running
    released: bool = False  # devices back to their defaults
    release_audit_seq: int | None = None


def default_actions(site: SiteConfig) -> list[Action]:
    """What the devices do with no plan: PV at its peak (uncapped), batteries idle in
    their own mode (no import cap)."""
    actions = [
        Action(kind="set_pv_limit", asset=p.id, power_kw=p.peak_kw)
        for p in site.assets.pv
        if p.curtailable
    ]
    actions += [
        Action(kind="set_battery_power", asset=b.id, power_kw=0.0) for b in site.assets.batteries
    ]
    return actions


class PlanExecutor:
    def __init__(
        self,
        site: SiteConfig,
        actuator: Actuator,
        snapshot: Callable[[], SiteSnapshot],
        clock: Clock,
    ) -> None:
        self._site = site
        self._actuator = actuator
        self._snapshot = snapshot
        self._clock = clock
        self._lock = threading.RLock()
        self._runs: dict[str, PlanRun] = {}
        self._active: tuple[StoredPlan, Caller] | None = None

    def arm(self, caller: Caller, stored: StoredPlan) -> tuple[PlanRun, ActuationResult]:
        """Start a plan: the step that covers now is applied at once (its result is
        returned; a refusal is raised), later steps at their starts. A running plan
        is superseded without going back to defaults in between."""
        plan = stored.plan
        with self._lock:
            now = self._clock.now()
            step = current_step(plan, now)  # refuses a plan with no step left
            if self._active is not None:
                old = self._runs[self._active[0].plan.id]
                old.status, old.reason = "superseded", f"superseded by {plan.id}"
                self._active = None
            run = PlanRun(
                plan_id=plan.id,
                principal=caller.name,
                status="running",
                armed_at=now,
                ends_at=plan.steps[-1].time + timedelta(seconds=plan.step_s),
            )
            self._runs[plan.id] = run
            while len(self._runs) > KEPT_RUNS:
                del self._runs[next(iter(self._runs))]
            self._active = (stored, caller)
            result = self._apply(run, stored, caller, step)
            if isinstance(result, PolicyRefusal):  # audited; the run is stopped and released
                raise result
            return run, result

    def tick(self) -> None:
        """Apply the step that has started, or end the run; called by the runtime."""
        with self._lock:
            if self._active is None:
                return
            stored, caller = self._active
            run = self._runs[stored.plan.id]
            now = self._clock.now()
            if self._actuator.killswitch.state.halted:
                self._end(run, "halted", "the site was halted", release=False)
                return
            if now >= run.ends_at:
                self._end(run, "completed", "the plan's last step ended")
                return
            step = current_step(stored.plan, now)
            if any(r.time == step.time for r in run.steps):
                return
            self._apply(run, stored, caller, step)

    def status(self, plan_id: str | None = None) -> PlanRun | None:
        """One run by plan id, or the latest run."""
        with self._lock:
            if plan_id is not None:
                run = self._runs.get(plan_id)
            else:
                run = next(reversed(self._runs.values()), None)
            return None if run is None else run.model_copy(deep=True)

    def _apply(
        self, run: PlanRun, stored: StoredPlan, caller: Caller, step
    ) -> ActuationResult | PolicyRefusal:
        plan = stored.plan
        arguments = {"plan_id": plan.id, "step_time": step.time.isoformat()}
        snap = self._snapshot()
        try:
            check_drift(self._site, plan, step, snap)
        except PolicyRefusal as refusal:
            self._actuator.refuse(caller, "dispatch", arguments, refusal)
            run.steps.append(StepRecord(time=step.time, outcome="refused", detail=str(refusal)))
            self._end(run, "stopped", str(refusal))
            return refusal
        actions = step_actions(self._site, step, snap, plan.peak_import_kw_so_far, plan.step_s)
        try:
            result = self._actuator.request(caller, "dispatch", actions, arguments, direct=False)
        except PolicyRefusal as refusal:
            run.steps.append(StepRecord(time=step.time, outcome="refused", detail=str(refusal)))
            halted = refusal.rule == "kill_switch"
            self._end(run, "halted" if halted else "stopped", str(refusal), release=not halted)
            return refusal
        run.steps.append(
            StepRecord(
                time=step.time,
                outcome=result.outcome,
                audit_seq=result.audit_seq,
                detail=result.preview,
            )
        )
        return result

    def _end(self, run: PlanRun, status: RunStatus, reason: str, release: bool = True) -> None:
        run.status, run.reason = status, reason
        active = self._active
        self._active = None
        if not release or active is None:
            return  # halted: the kill switch refuses every command, defaults included
        try:
            result = self._actuator.request(
                active[1],
                "plan_release",
                default_actions(self._site),
                {"plan_id": run.plan_id, "reason": reason},
                direct=False,
            )
            run.released = result.outcome == "executed"
            run.release_audit_seq = result.audit_seq
        except (PolicyRefusal, GridpilotError) as exc:
            log.warning("plan %s: could not return devices to defaults: %s", run.plan_id, exc)
            run.reason = f"{reason}; devices not returned to defaults: {exc}"
