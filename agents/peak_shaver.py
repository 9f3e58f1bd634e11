"""Predictive load balancing: shave a peak before it happens.

Each plan step it forecasts the next 60 minutes of net load. When the predicted peak
(P90: being wrong on the high side is what costs) crosses the threshold, it asks
`optimize` for a plan that weighs switching heavily and dispatches it, if the plan
keeps the import under the threshold. The optimizer prices import only above the
billing period's peak so far, so on a site whose period peak is already above the
threshold its plan does not shave; then the daemon shaves with the fewest switchings
itself: before the peak the battery charges with the room left under the threshold,
then covers the import above it (no switching at all), and
only when the battery cannot (empty, or at its power limit) is the lowest-priority
load shed, and restored once there is room again. While the battery holds a peak no
new plan is asked for (planning takes seconds; the loop keeps following the load).
The log says which way it went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents import calls
from agents.arbitrage import step_start
from agents.client import Session, ToolResult
from agents.daemon import Decision, observe_state
from agents.view import Assets, State, parse_assets, parse_state

PRIORITY = 60  # above arbitrage (a peak costs all month), below grid response
# Switching priced 20x: a plan that sheds a load for an hour beats one that flaps.
WEIGHTS = {"switching": 20.0, "demand_charge": 2.0}
STEP_KW = 1.0  # a battery setpoint closer than this to the last one is not resent


@dataclass(frozen=True)
class Settings:
    threshold_kw: float | None = None  # default: 90 % of the import limit
    look_ahead_hours: float = 1.0
    battery: str = "battery"
    # Aim this far under the threshold: the bill counts 15-min means, and the battery
    # answers a load step a few seconds late.
    margin_kw: float = 2.0
    # Restore a shed load only when the import has this much room beyond its nominal power.
    restore_room_kw: float = 3.0


@dataclass
class Seen:
    state: State
    step: datetime
    peak_kw: float | None  # P90 of the net load forecast over the look-ahead
    threshold_kw: float
    plan: dict[str, Any] | None
    assets: Assets | None = None


@dataclass
class Memory:
    battery_kw: float = 0.0  # what we last set the battery to
    shed: list[str] = field(default_factory=list)  # loads we switched off, latest last
    dispatched_step: str | None = None  # a shaving plan runs this step: leave it be
    held_step: str | None = None  # the step the battery is holding a peak in


def plan_shaves(plan: dict[str, Any] | None, threshold_kw: float) -> bool:
    """A plan that keeps the import under the threshold over its next hour."""
    if plan is None or plan.get("status") == "fallback":
        return False
    steps = plan.get("next_steps") or []
    return bool(steps) and all(s.get("grid_import_kw", 0.0) <= threshold_kw for s in steps)


def decide(seen: Seen, cfg: Settings, memory: Memory, lease_s: float) -> list[Decision]:
    """Dispatch a shaving plan when one exists; otherwise the battery takes the import
    above the threshold, and loads are shed only when it cannot."""
    state = seen.state
    if state.halted or state.grid_import_kw is None:
        return []
    step = f"step:{seen.step.isoformat()}"
    if memory.dispatched_step == step:
        return []
    predicted = seen.peak_kw is not None and seen.peak_kw > seen.threshold_kw
    hold = calls.lease(cfg.battery, PRIORITY, lease_s, "peak shaving")
    if predicted and plan_shaves(seen.plan, seen.threshold_kw):
        plan = seen.plan
        assert plan is not None
        return [
            Decision(
                reason=f"predicted peak {seen.peak_kw:.1f} kW in the next hour crosses "
                f"{seen.threshold_kw:.1f} kW: plan {plan['plan_id']} ({plan['status']}) keeps "
                "the import under it with the fewest switchings",
                calls=[hold, calls.dispatch(plan["plan_id"], plan["plan_hash"])],
                effect=f"dispatched {step}",
            )
        ]
    target = seen.threshold_kw - cfg.margin_kw
    # The site's import without our battery: what the battery has to bring under target.
    own = state.battery_kw.get(cfg.battery) or 0.0
    base = state.grid_import_kw + own
    engaged = predicted or base > target
    limits = _battery_limits(seen.assets, cfg.battery)
    want = min(max(0.0, base - target), limits["max_discharge_kw"]) if engaged else 0.0
    soc = state.soc_fraction.get(cfg.battery)
    if predicted and want == 0.0 and soc is not None and soc < limits["soc_max_fraction"] - 0.02:
        # The peak is coming and there is room under the threshold now: fill the battery
        # with that room (the import stays under the target), so it lasts the peak out.
        room = target - cfg.margin_kw - base
        want = -min(room, limits["max_charge_kw"]) if room >= STEP_KW else 0.0
    if engaged and memory.held_step == step:
        # Within a step the battery does not back off: the bill counts the 15-min mean,
        # and a load that dips for a minute comes back.
        want = max(want, memory.battery_kw)
    empty = soc is not None and soc <= limits["soc_min_fraction"] + 0.02
    if empty:
        want = 0.0
    why = (
        f"predicted peak {seen.peak_kw:.1f} kW in the next hour crosses {seen.threshold_kw:.1f} kW"
        if predicted
        else f"import without the battery {base:.1f} kW"
    )
    if seen.plan is not None and predicted:
        top = max(
            (s.get("grid_import_kw", 0.0) for s in seen.plan.get("next_steps") or []), default=0
        )
        why += (
            f"; plan {seen.plan['plan_id']} ({seen.plan['status']}) would import up to "
            f"{top:.1f} kW, not a shaving plan"
        )
    out: list[Decision] = []
    # Against what the battery does, not what we last asked: a plan's end returns it to 0.
    if abs(want - own) >= STEP_KW or (want == 0.0 and memory.battery_kw != 0.0):
        out.append(
            Decision(
                reason=f"{why}: battery {want:+.1f} kW "
                + ("charges ahead of the peak" if want < 0 else "holds the import")
                + f" at {base - want:.1f} kW (no switching)",
                calls=[hold, calls.set_power(cfg.battery, want, "peak shaving: battery")],
                effect=f"battery {want} {step if engaged else ''}".strip(),
            )
        )
    covered = base - want
    on = [r.load for r in state.relays if r.on and not r.critical]
    order = [a.id for a in seen.assets.sheddable()] if seen.assets else on
    if covered > seen.threshold_kw and on:
        load = next(ld for ld in order if ld in on)
        out.append(
            Decision(
                reason=f"{why}; the battery cannot hold it ({'empty' if empty else 'at its limit'}"
                f", import {covered:.1f} kW): rule-based fallback sheds {load}",
                calls=[calls.relay(load, False, "peak shaving: battery cannot hold the peak")],
                effect=f"shed {load}",
            )
        )
    elif memory.shed and not predicted:
        load = memory.shed[-1]
        nominal = _nominal(seen.assets, load)
        if covered + nominal < target - cfg.restore_room_kw:
            out.append(
                Decision(
                    reason=f"import {covered:.1f} kW leaves room for {load} ({nominal:g} kW)",
                    calls=[calls.relay(load, True, "peak shaving: room again")],
                    effect=f"restore {load}",
                )
            )
    return out


def remember(memory: Memory, decision: Decision) -> None:
    kind, _, what = decision.effect.partition(" ")
    if kind == "dispatched":
        memory.dispatched_step = what
    elif kind == "battery":
        kw, _, step = what.partition(" ")
        memory.battery_kw, memory.held_step = float(kw), step or None
    elif kind == "shed":
        memory.shed.append(what)
    elif kind == "restore" and what in memory.shed:
        memory.shed.remove(what)


def _battery_limits(assets: Assets | None, battery: str) -> dict[str, float]:
    found = next((a for a in assets.assets if a.id == battery), None) if assets else None
    limits = found.limits if found else {}
    return {
        "max_discharge_kw": limits.get("max_discharge_kw", 0.0),
        "soc_min_fraction": limits.get("soc_min_fraction", 0.1),
        "max_charge_kw": limits.get("max_charge_kw", 0.0),
        "soc_max_fraction": limits.get("soc_max_fraction", 1.0),
    }


def _nominal(assets: Assets | None, load: str) -> float:
    found = next((a for a in assets.assets if a.id == load), None) if assets else None
    return (found.limits.get("nominal_kw") if found else None) or 0.0


class PeakShaver:
    role = "peak-shaving"
    priority = PRIORITY

    def __init__(self, settings: Settings | None = None, interval_s: float = 10.0) -> None:
        self.settings = settings or Settings()
        self.interval_s = interval_s
        self.assets: Assets | None = None
        self.memory = Memory()
        self.forecast_step: datetime | None = None
        self.peak_kw: float | None = None
        self.plan: dict[str, Any] | None = None
        self.leased = False

    @property
    def threshold_kw(self) -> float:
        assert self.assets is not None
        return self.settings.threshold_kw or 0.9 * self.assets.import_limit_kw

    async def observe(self, session: Session) -> Seen | None:
        if self.assets is None:
            found = await session.call(calls.list_assets().tool)
            if not found.ok or not found.data:
                return None
            self.assets = parse_assets(found.data)
        seen = await observe_state(session)
        if not seen.ok:
            return None
        state = parse_state(seen.data)
        step = step_start(state.time, self.assets.step_s)
        if step != self.forecast_step:  # forecast (and plan) once per step
            fc_call = calls.forecast("net_load", self.settings.look_ahead_hours)
            fc = await session.call(fc_call.tool, fc_call.arguments)
            if not fc.ok or not fc.data:
                return None
            self.forecast_step, self.peak_kw, self.plan = step, max(fc.data["p90"]), None
            # While the battery already holds a peak, no plan is asked for: planning
            # takes seconds, and the loop must keep following the load meanwhile.
            if self.peak_kw > self.threshold_kw and self.memory.battery_kw == 0.0:
                opt = calls.optimize(max(1.0, self.settings.look_ahead_hours), WEIGHTS)
                made = await session.call(opt.tool, opt.arguments)
                self.plan = made.data if made.ok else None
        return Seen(state, step, self.peak_kw, self.threshold_kw, self.plan, self.assets)

    def decide(self, seen: Seen) -> list[Decision]:
        lease_s = 2 * (self.assets.step_s if self.assets else 900)
        return decide(seen, self.settings, self.memory, lease_s)

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        remember(self.memory, decision)
        self.leased = self.leased or any(c.tool == "lease" for c in decision.calls)

    def held(self) -> list[str]:
        return [self.settings.battery] if self.leased else []
