"""Predictive load balancing: shave a peak before it happens.

Each cycle it forecasts the next 60 minutes of net load. When the predicted peak
(P90: being wrong on the high side is what costs) crosses the threshold, it asks
`optimize` for a plan that weighs switching heavily — the fewest relay switchings
that keep the import down — and dispatches its current step. When the optimizer
finds no feasible plan it gets the rule-based fallback, and the log says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents import calls
from agents.arbitrage import step_start
from agents.client import Session, ToolResult
from agents.daemon import Decision, observe_state
from agents.view import State, parse_state

PRIORITY = 60  # above arbitrage (a peak costs all month), below grid response
# Switching priced 20x: a plan that sheds a load for an hour beats one that flaps.
WEIGHTS = {"switching": 20.0, "demand_charge": 2.0}


@dataclass(frozen=True)
class Settings:
    threshold_kw: float | None = None  # default: 90 % of the import limit
    look_ahead_hours: float = 1.0
    battery: str = "battery"


@dataclass
class Seen:
    state: State
    step: datetime
    peak_kw: float | None
    threshold_kw: float
    plan: dict[str, Any] | None


def decide(seen: Seen, battery: str, lease_s: float) -> list[Decision]:
    """Dispatch a shaving plan when the predicted peak crosses the threshold."""
    if seen.peak_kw is None or seen.plan is None or seen.state.halted:
        return []
    if seen.peak_kw <= seen.threshold_kw:
        return []
    plan = seen.plan
    how = (
        f"no feasible plan, rule-based fallback ({plan.get('diagnosis') or 'no diagnosis'})"
        if plan["status"] == "fallback"
        else f"plan {plan['plan_id']} ({plan['status']}) with the fewest switchings"
    )
    return [
        Decision(
            reason=f"predicted peak {seen.peak_kw:.1f} kW in the next hour crosses "
            f"{seen.threshold_kw:.1f} kW: {how}",
            calls=[
                calls.lease(battery, PRIORITY, lease_s, "peak shaving"),
                calls.dispatch(plan["plan_id"], plan["plan_hash"]),
            ],
            effect=f"step:{seen.step.isoformat()}",
        )
    ]


class PeakShaver:
    role = "peak-shaving"
    priority = PRIORITY

    def __init__(self, settings: Settings | None = None, interval_s: float = 10.0) -> None:
        self.settings = settings or Settings()
        self.interval_s = interval_s
        self.step_s: int | None = None
        self.limit_kw: float | None = None
        self.done_step: str | None = None
        self.leased = False

    @property
    def threshold_kw(self) -> float:
        assert self.limit_kw is not None
        return self.settings.threshold_kw or 0.9 * self.limit_kw

    async def observe(self, session: Session) -> Seen | None:
        if self.step_s is None:
            found = await session.call(calls.list_assets().tool)
            if not found.ok or not found.data:
                return None
            self.step_s = int(found.data["step_s"])
            grid = next(a for a in found.data["assets"] if a["kind"] == "grid")
            self.limit_kw = float(grid["limits"]["import_limit_kw"])
        seen = await observe_state(session)
        if not seen.ok:
            return None
        state = parse_state(seen.data)
        step = step_start(state.time, self.step_s)
        if f"step:{step.isoformat()}" == self.done_step:
            return Seen(state, step, None, self.threshold_kw, None)
        fc_call = calls.forecast("net_load", self.settings.look_ahead_hours)
        fc = await session.call(fc_call.tool, fc_call.arguments)
        if not fc.ok or not fc.data:
            return None
        peak = max(fc.data["p90"])
        plan = None
        if peak > self.threshold_kw:
            opt = calls.optimize(max(1.0, self.settings.look_ahead_hours), WEIGHTS)
            made = await session.call(opt.tool, opt.arguments)
            plan = made.data if made.ok else None
        return Seen(state, step, peak, self.threshold_kw, plan)

    def decide(self, seen: Seen) -> list[Decision]:
        return decide(seen, self.settings.battery, lease_s=2 * (self.step_s or 900))

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        self.done_step = decision.effect
        self.leased = True

    def held(self) -> list[str]:
        return [self.settings.battery] if self.leased else []
