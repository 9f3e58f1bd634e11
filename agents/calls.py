"""The one place that knows the server's tool names and argument names.

Daemons and the LLM runner build their calls here, so a renamed tool or argument on
the server is a one-line change for every agent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Call(BaseModel):
    tool: str
    arguments: dict[str, Any] = {}


def grid_state() -> Call:
    return Call(tool="grid_state")


def list_assets() -> Call:
    return Call(tool="list_assets")


def forecast(target: str, horizon_hours: float) -> Call:
    return Call(tool="forecast", arguments={"target": target, "horizon_hours": horizon_hours})


def optimize(horizon_hours: float, objective_weights: dict[str, float] | None = None) -> Call:
    arguments: dict[str, Any] = {"horizon_hours": horizon_hours}
    if objective_weights:
        arguments["objective_weights"] = objective_weights
    return Call(tool="optimize", arguments=arguments)


def dispatch(plan_id: str, plan_hash: str | None) -> Call:
    return Call(tool="dispatch", arguments={"plan_id": plan_id, "plan_hash": plan_hash})


def set_power(asset: str, power_kw: float, reason: str) -> Call:
    """Battery (+ discharge / - charge), peaker (0 stops it) or PV limit, in kW."""
    return Call(
        tool="set_setpoint",
        arguments={"asset": asset, "power_kw": round(power_kw, 3), "reason": reason},
    )


def relay(load: str, on: bool, reason: str) -> Call:
    return Call(tool="toggle_relay", arguments={"load": load, "on": on, "reason": reason})


def lease(asset: str, priority: int, duration_s: float, purpose: str) -> Call:
    return Call(
        tool="lease",
        arguments={
            "asset": asset,
            "op": "acquire",
            "priority": priority,
            "duration_s": round(duration_s),
            "purpose": purpose[:200],
        },
    )


def release(asset: str) -> Call:
    return Call(tool="lease", arguments={"asset": asset, "op": "release"})
