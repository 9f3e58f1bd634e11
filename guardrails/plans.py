"""Plans kept between `optimize` and `dispatch` (select-before-operate).

`optimize` stores a plan with an id, a hash of its content and an expiry. `dispatch`
executes only an unexpired plan whose content still hashes the same, and only the
step that covers now, re-checked against the current state by the policy; a plan
made for a battery at 80 % is not applied to one at 20 %. The validity runs on the
wall clock whatever the simulation speed: a person reviews a plan in real minutes.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta

from pydantic import BaseModel

from grid.clock import Clock, RealClock
from grid.config import SiteConfig
from grid.errors import PolicyRefusal
from guardrails.policy import Action, SiteSnapshot
from optimization.plan import (
    Plan,
    StepSetpoints,
    import_cap_kw,
    pv_caps_kw,
    shave_reserve_soc,
    soc_tracking_kw,
)

# How far the battery may have drifted from the plan's assumption before the plan
# is judged stale: beyond this its setpoints were computed for another situation.
MAX_SOC_DRIFT = 0.15
MAX_KEPT = 200


class StoredPlan(BaseModel):
    plan: Plan
    content_hash: str
    expires_at: datetime


def content_hash(plan: Plan) -> str:
    return hashlib.sha256(plan.model_dump_json().encode()).hexdigest()


class PlanBook:
    def __init__(self, ttl_s: float, wall: Clock | None = None) -> None:
        self._clock = wall or RealClock()
        self._ttl = timedelta(seconds=ttl_s)
        self._plans: dict[str, StoredPlan] = {}
        self._lock = threading.Lock()

    def add(self, plan: Plan) -> StoredPlan:
        stored = StoredPlan(
            plan=plan, content_hash=content_hash(plan), expires_at=self._clock.now() + self._ttl
        )
        with self._lock:
            self._plans[plan.id] = stored
            while len(self._plans) > MAX_KEPT:  # oldest first: dicts keep insertion order
                del self._plans[next(iter(self._plans))]
        return stored

    def get(self, plan_id: str) -> StoredPlan | None:
        with self._lock:
            return self._plans.get(plan_id)

    def recent(self, n: int = 10) -> list[StoredPlan]:
        with self._lock:
            return list(self._plans.values())[-n:]

    def for_dispatch(self, plan_id: str, expected_hash: str | None = None) -> StoredPlan:
        """The plan, if it may still be operated; otherwise a refusal saying why."""
        stored = self.get(plan_id)
        if stored is None:
            raise PolicyRefusal(
                "plan_unknown",
                f"no plan {plan_id[:40]!r}: call optimize first and dispatch the id it returns",
            )
        now = self._clock.now()
        if stored.expires_at <= now:
            raise PolicyRefusal(
                "plan_expired",
                f"plan {plan_id} expired at {stored.expires_at:%H:%M:%S}Z (wall clock); "
                "call optimize again",
            )
        if content_hash(stored.plan) != stored.content_hash or (
            expected_hash is not None and expected_hash != stored.content_hash
        ):
            raise PolicyRefusal(
                "plan_changed",
                f"plan {plan_id} does not match the hash it was issued with; call optimize again",
            )
        return stored


def current_step(plan: Plan, now: datetime) -> StepSetpoints:
    for step in plan.steps:
        if step.time <= now < step.time + timedelta(seconds=plan.step_s):
            return step
    if plan.steps and now < plan.steps[0].time:
        return plan.steps[0]
    raise PolicyRefusal("plan_expired", f"plan {plan.id} covers no step at {now:%H:%M:%S}Z")


def step_actions(
    site: SiteConfig,
    step: StepSetpoints,
    snapshot: SiteSnapshot,
    peak_so_far_kw: float,
    step_s: int | None = None,
) -> list[Action]:
    """The actions that bring the site to a plan step; unchanged assets are left alone.
    The rule the closed loop's `realise` follows too: batteries are driven toward the
    step's SoC from the measured one (`soc_tracking_kw`) and get the step's import cap
    (peak-shaving mode, `import_cap_kw`) with the reserve the end-of-day floor needs
    (`shave_reserve_soc`) and the step's import to follow; PV is capped only where the
    step curtails, and released to its peak otherwise (`pv_caps_kw`)."""
    step_s = step_s or site.site.step_s
    cap = round(import_cap_kw(site, peak_so_far_kw, step), 3)
    reserve = shave_reserve_soc(site, step.time + timedelta(seconds=step_s))
    pv_caps = pv_caps_kw(site, step)
    actions: list[Action] = []
    for load in site.assets.loads:
        if not load.switchable:
            continue
        want = step.relay_on.get(load.id)
        if want is not None and snapshot.relay_on.get(load.id) != want:
            actions.append(Action(kind="set_relay", asset=load.id, on=want))
    for battery in site.assets.batteries:
        if battery.id in step.battery_kw:
            power = step.battery_kw[battery.id]
            soc = snapshot.soc_fraction.get(battery.id)
            if soc is not None and battery.id in step.soc_fraction:
                target = step.soc_fraction[battery.id]
                power = soc_tracking_kw(battery, soc, target, step_s / 3600)
            actions.append(
                Action(
                    kind="set_battery_power",
                    asset=battery.id,
                    power_kw=round(power, 3),
                    import_cap_kw=cap,
                    reserve_soc_fraction=round(reserve[battery.id], 4),
                    follow_import_kw=round(step.grid_import_kw, 3),
                )
            )
    for pv in site.assets.pv:
        if pv.curtailable:
            limit = pv_caps[pv.id]
            power = pv.peak_kw if limit is None else limit
            actions.append(Action(kind="set_pv_limit", asset=pv.id, power_kw=power))
    for peaker in site.assets.peakers:
        on = step.peaker_on.get(peaker.id)
        running = snapshot.peaker_running.get(peaker.id)
        if on is not None and on != running:
            kind = "start_peaker" if on else "stop_peaker"
            actions.append(Action(kind=kind, asset=peaker.id))
        if on and step.peaker_kw.get(peaker.id):
            actions.append(
                Action(
                    kind="set_peaker_power",
                    asset=peaker.id,
                    power_kw=round(step.peaker_kw[peaker.id], 3),
                )
            )
    return actions


def check_drift(site: SiteConfig, plan: Plan, step: StepSetpoints, snapshot: SiteSnapshot) -> None:
    """Refuse a plan whose battery assumption no longer holds (select-before-operate)."""
    index = plan.steps.index(step)
    for battery in site.assets.batteries:
        now_soc = snapshot.soc_fraction.get(battery.id)
        if index == 0:
            continue  # the plan's start SoC is its input; it was current when planned
        planned = plan.steps[index - 1].soc_fraction.get(battery.id)
        if now_soc is not None and planned is not None and abs(now_soc - planned) > MAX_SOC_DRIFT:
            raise PolicyRefusal(
                "plan_state_drift",
                f"{battery.id} SoC is {now_soc:.2f} but the plan expected {planned:.2f} "
                f"(more than {MAX_SOC_DRIFT:.2f} apart); call optimize again",
            )
