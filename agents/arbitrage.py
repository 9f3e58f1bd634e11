"""The arbitrage trader: each plan step, forecast, optimize and dispatch.

It buys cheap hours and sells (or avoids) dear ones through the MILP plan, at a low
lease priority, and it keeps a reserve: while the battery's state of charge is at or
below `reserve_soc_fraction`, a plan step that would discharge it further is not
dispatched; the battery is held idle instead, so the grid-response actor finds the
energy it needs for an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents import calls
from agents.client import Session, ToolResult
from agents.daemon import Decision, observe_state
from agents.view import State, parse_state

PRIORITY = 30  # economic daemons stay below 50
# A trader moves energy through the battery; it does not sell the site's service. Shed
# load priced at 100x its value of lost load keeps every load on in its plans (shedding
# is for the peak shaver and grid response, which say so).
WEIGHTS = {"shed_load": 100.0}


@dataclass(frozen=True)
class Settings:
    horizon_hours: float = 24.0
    reserve_soc_fraction: float = 0.3
    battery: str = "battery"


@dataclass
class Seen:
    state: State
    step: datetime
    plan: dict[str, Any] | None
    outlook: str


def step_start(now: datetime, step_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step_s, UTC)


def decide(seen: Seen, cfg: Settings, lease_s: float) -> list[Decision]:
    """Dispatch this step's plan, unless it would eat into the reserve."""
    plan, state = seen.plan, seen.state
    if plan is None or state.halted:
        return []
    first = (plan.get("next_steps") or [{}])[0]
    planned_kw = first.get("battery_kw", {}).get(cfg.battery, 0.0)
    soc = state.soc_fraction.get(cfg.battery)
    hold = calls.lease(cfg.battery, PRIORITY, lease_s, "arbitrage: plan dispatch")
    step = f"step:{seen.step.isoformat()}"
    if soc is not None and soc <= cfg.reserve_soc_fraction and planned_kw > 0:
        return [
            Decision(
                reason=f"plan {plan['plan_id']} would discharge {planned_kw:.1f} kW at SoC "
                f"{soc:.2f}, inside the {cfg.reserve_soc_fraction:.2f} reserve kept for grid "
                "response: battery idle instead",
                calls=[
                    hold,
                    calls.set_power(cfg.battery, 0.0, "arbitrage: keeping the reserve"),
                ],
                effect=step,
            )
        ]
    return [
        Decision(
            reason=f"{seen.outlook}; plan {plan['plan_id']} ({plan['status']}) saves "
            f"{plan['saving_eur']:.2f} EUR against no control: dispatch its current step "
            f"(battery {planned_kw:+.1f} kW)",
            calls=[hold, calls.dispatch(plan["plan_id"], plan["plan_hash"])],
            effect=step,
            fallback=Decision(
                reason=f"dispatch of plan {plan['plan_id']} refused: its battery setpoint "
                f"{planned_kw:+.1f} kW alone",
                calls=[
                    hold,
                    calls.set_power(
                        cfg.battery, planned_kw, f"arbitrage: battery share of {plan['plan_id']}"
                    ),
                ],
                effect=step,
            ),
        )
    ]


class Arbitrage:
    role = "arbitrage"
    priority = PRIORITY

    def __init__(self, settings: Settings | None = None, interval_s: float = 10.0) -> None:
        self.settings = settings or Settings()
        self.interval_s = interval_s
        self.step_s: int | None = None
        self.done_step: str | None = None  # the step already dispatched: never twice
        self.leased = False

    async def observe(self, session: Session) -> Seen | None:
        if self.step_s is None:
            found = await session.call(calls.list_assets().tool)
            if not found.ok:
                return None
            self.step_s = int((found.data or {})["step_s"])
        seen = await observe_state(session)
        if not seen.ok:
            return None
        state = parse_state(seen.data)
        step = step_start(state.time, self.step_s)
        if f"step:{step.isoformat()}" == self.done_step:
            return Seen(state, step, None, "")
        fc_call = calls.forecast("net_load", 1)
        fc = await session.call(fc_call.tool, fc_call.arguments)
        outlook = "net load forecast unavailable"
        if fc.ok and fc.data:
            outlook = f"net load next hour {min(fc.data['p50']):.1f}-{max(fc.data['p50']):.1f} kW"
        opt_call = calls.optimize(self.settings.horizon_hours, WEIGHTS)
        made = await session.call(opt_call.tool, opt_call.arguments)
        return Seen(state, step, made.data if made.ok else None, outlook)

    def decide(self, seen: Seen) -> list[Decision]:
        return decide(seen, self.settings, lease_s=2 * (self.step_s or 900))

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        self.done_step = decision.effect
        self.leased = True

    def held(self) -> list[str]:
        return [self.settings.battery] if self.leased else []
