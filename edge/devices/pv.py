"""PV inverter: output from the available irradiance power, capped by a curtailment
limit; shading and trips come from the simulator's faults."""

from __future__ import annotations

from typing import Any

from edge.devices.base import Twin, param
from edge.protocol import Command
from grid.clock import Clock
from grid.config import PV, Device


class PVTwin(Twin):
    kind = "pv_inverter"

    def __init__(self, site: str, device: Device, clock: Clock, pv: PV) -> None:
        super().__init__(site, device, clock)
        self.pv = pv
        self.limit_kw = pv.peak_kw
        self.available_kw = 0.0  # set by the simulator from the site profiles
        self.shading_fraction = 0.0  # share of irradiance lost (pv_shading fault)
        self.tripped = False
        self.power_kw = 0.0

    def values(self) -> dict[str, float]:
        return {
            "power_kw": round(self.power_kw, 4),
            "limit_kw": round(self.limit_kw, 4),
            "available_kw": round(self.available_kw * (1.0 - self.shading_fraction), 4),
        }

    def state(self) -> dict[str, Any]:
        return {"limit_kw": self.limit_kw, "tripped": self.tripped}

    def execute(self, command: Command) -> tuple[str, str]:
        if command.action != "set_curtailment":
            return "rejected", f"a PV inverter does set_curtailment, not {command.action}"
        if not self.pv.curtailable:
            return "rejected", f"PV {self.pv.id} is not curtailable"
        try:
            limit_kw = param(command, "limit_kw", float)
        except ValueError as exc:
            return "rejected", str(exc)
        if not 0.0 <= limit_kw <= self.pv.peak_kw:
            return "rejected", f"params.limit_kw = {limit_kw:g} outside [0, {self.pv.peak_kw:g}] kW"
        self.limit_kw = limit_kw
        return "ok", f"limit {limit_kw:g} kW"

    def step(self, dt_s: float, now_s: float) -> None:
        with self.lock:
            if self.tripped:
                self.power_kw = 0.0
            else:
                self.power_kw = min(
                    self.available_kw * (1.0 - self.shading_fraction), self.limit_kw
                )
