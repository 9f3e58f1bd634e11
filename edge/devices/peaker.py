"""Gas peaker: start-up delay, minimum stable load, ramp limit and fuel use."""

from __future__ import annotations

from typing import Any, Literal

from edge.devices.base import Twin, param
from edge.protocol import Command
from grid.clock import Clock
from grid.config import Device, Peaker

ELECTRICAL_EFFICIENCY = 0.35
# Fuel burnt while spinning up or idling, as a share of fuel at full load.
IDLE_FUEL_SHARE = 0.08

Mode = Literal["off", "starting", "running"]


class PeakerTwin(Twin):
    kind = "peaker"

    def __init__(self, site: str, device: Device, clock: Clock, peaker: Peaker) -> None:
        super().__init__(site, device, clock)
        self.peaker = peaker
        self.mode: Mode = "off"
        self.setpoint_kw = peaker.min_kw
        self.power_kw = 0.0
        self.started_at_s = 0.0

    def fuel_kw(self) -> float:
        full_fuel_kw = self.peaker.max_kw / ELECTRICAL_EFFICIENCY
        if self.mode == "off":
            return 0.0
        return self.power_kw / ELECTRICAL_EFFICIENCY + IDLE_FUEL_SHARE * full_fuel_kw

    def values(self) -> dict[str, float]:
        return {
            "power_kw": round(self.power_kw, 4),
            # reported like a PV inverter's limit_kw: a steady output at the commanded
            # setpoint is regulation, not a stuck meter (forecasting.anomaly)
            "setpoint_kw": round(self.setpoint_kw, 4),
            "running": 1.0 if self.mode == "running" else 0.0,
            "fuel_kw": round(self.fuel_kw(), 4),
        }

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "setpoint_kw": self.setpoint_kw, "power_kw": self.power_kw}

    def execute(self, command: Command) -> tuple[str, str]:
        p = self.peaker
        if command.action == "start":
            if self.mode != "off":
                return "ok", f"already {self.mode}"
            self.mode = "starting"
            self.started_at_s = self.clock.time()
            return "ok", f"starting, running in {p.startup_delay_s} s"
        if command.action == "stop":
            self.mode = "off"
            self.power_kw = 0.0
            return "ok", "stopped"
        if command.action == "set_power":
            try:
                power_kw = param(command, "power_kw", float)
            except ValueError as exc:
                return "rejected", str(exc)
            if not p.min_kw <= power_kw <= p.max_kw:
                return "rejected", (
                    f"params.power_kw = {power_kw:g} outside [{p.min_kw:g} (minimum stable "
                    f"load), {p.max_kw:g}] kW"
                )
            self.setpoint_kw = power_kw
            return "ok", f"setpoint {power_kw:g} kW" + (
                "" if self.mode == "running" else f" (applies once running; now {self.mode})"
            )
        return "rejected", f"a peaker does start, stop or set_power, not {command.action}"

    def step(self, dt_s: float, now_s: float) -> None:
        p = self.peaker
        with self.lock:
            if self.mode == "starting" and now_s - self.started_at_s >= p.startup_delay_s:
                self.mode = "running"
                self.power_kw = p.min_kw
            if self.mode != "running":
                return
            target = min(max(self.setpoint_kw, p.min_kw), p.max_kw)
            if p.ramp_kw_per_min is None:
                self.power_kw = target
            else:
                step_kw = p.ramp_kw_per_min * dt_s / 60.0
                self.power_kw += max(-step_kw, min(step_kw, target - self.power_kw))
