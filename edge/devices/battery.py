"""Battery and its inverter: power setpoint within limits, SoC with charge and
discharge efficiencies, a first-order thermal model with derating, and SoH fade.

Peak-shaving mode, as hybrid inverters with a grid meter have it: a `set_power` with
`import_cap_kw` makes the inverter discharge beyond the setpoint (or charge less)
while the site's grid import would pass the cap. The site (the simulator, which
plays the grid meter's wire to the inverter) sets `shave_kw` each step. With
`reserve_soc_fraction` it shaves only down to that SoC while the import is under the
site's import limit (`must_shave_kw` is what lies above the limit); with
`follow_import_kw` it gives up setpoint discharge while the site would import less
than that (`spare_kw`), as `optimization.closed_loop.realise` has it."""

from __future__ import annotations

import math
from typing import Any

from edge.devices.base import Twin, param
from edge.protocol import Command
from grid.clock import Clock
from grid.config import Battery, Device

THERMAL_TAU_S = 1800.0  # cell block time constant
FULL_POWER_RISE_C = 10.0  # steady temperature rise at full power
DERATE_START_C = 45.0
DERATE_END_C = 60.0  # no power at all above this
FADE_PER_CYCLE = 1e-4  # SoH lost per equivalent full cycle at 25 C


def derate_fraction(temperature_c: float) -> float:
    """Share of rated power allowed at a cell temperature (linear derating)."""
    if temperature_c <= DERATE_START_C:
        return 1.0
    if temperature_c >= DERATE_END_C:
        return 0.0
    return (DERATE_END_C - temperature_c) / (DERATE_END_C - DERATE_START_C)


class BatteryTwin(Twin):
    kind = "battery_inverter"

    def __init__(self, site: str, device: Device, clock: Clock, battery: Battery) -> None:
        super().__init__(site, device, clock)
        self.battery = battery
        self.setpoint_kw = 0.0
        self.import_cap_kw: float | None = None  # peak-shaving mode when set
        self.reserve_soc_fraction: float | None = None
        self.shave_kw = 0.0  # extra discharge the cap calls for this step
        self.must_shave_kw = 0.0  # the part of it above the import limit
        self.follow_import_kw: float | None = None
        self.spare_kw = 0.0  # how far the import is under follow_import_kw this step
        self.power_kw = 0.0  # + discharge into the site, - charge
        self.soc_fraction = battery.initial_soc_fraction
        self.soh_fraction = 1.0
        self.ambient_c = 25.0
        self.temperature_c = 25.0
        self.extra_heat_c = 0.0  # set by the battery_overtemp fault
        self.tripped = False  # set by the inverter_trip fault

    def values(self) -> dict[str, float]:
        return {
            "power_kw": round(self.power_kw, 4),
            "soc_fraction": round(self.soc_fraction, 5),
            "soh_fraction": round(self.soh_fraction, 6),
            "temperature_c": round(self.temperature_c, 3),
        }

    def state(self) -> dict[str, Any]:
        return {
            "setpoint_kw": self.setpoint_kw,
            "import_cap_kw": self.import_cap_kw,
            "reserve_soc_fraction": self.reserve_soc_fraction,
            "follow_import_kw": self.follow_import_kw,
            "power_kw": round(self.power_kw, 4),
            "soc_fraction": round(self.soc_fraction, 5),
            "tripped": self.tripped,
        }

    def execute(self, command: Command) -> tuple[str, str]:
        if command.action != "set_power":
            return "rejected", f"a battery inverter does set_power, not {command.action}"
        try:
            power_kw = param(command, "power_kw", float)
            cap = reserve = None
            if command.params.get("import_cap_kw") is not None:
                cap = param(command, "import_cap_kw", float)
            if command.params.get("reserve_soc_fraction") is not None:
                reserve = param(command, "reserve_soc_fraction", float)
            follow = None
            if command.params.get("follow_import_kw") is not None:
                follow = param(command, "follow_import_kw", float)
        except ValueError as exc:
            return "rejected", str(exc)
        if cap is not None and not 0.0 <= cap < math.inf:
            return "rejected", f"params.import_cap_kw = {cap:g} must be a finite kW >= 0"
        if follow is not None and not 0.0 <= follow < math.inf:
            return "rejected", f"params.follow_import_kw = {follow:g} must be a finite kW >= 0"
        if reserve is not None and not 0.0 <= reserve <= 1.0:
            return "rejected", f"params.reserve_soc_fraction = {reserve:g} must be within [0, 1]"
        b = self.battery
        if not -b.max_charge_kw <= power_kw <= b.max_discharge_kw:
            return "rejected", (
                f"params.power_kw = {power_kw:g} outside [-{b.max_charge_kw:g} (charge), "
                f"{b.max_discharge_kw:g} (discharge)] kW"
            )
        self.setpoint_kw, self.import_cap_kw = power_kw, cap
        self.reserve_soc_fraction = reserve if cap is not None else None
        self.follow_import_kw = follow if cap is not None else None
        held = "" if cap is None else f", grid import held to {cap:g} kW"
        return "ok", f"setpoint {power_kw:g} kW{held}"

    def available_kw(self, dt_s: float) -> tuple[float, float]:
        """(max discharge, max charge) this step, after SoC window and temperature."""
        b = self.battery
        capacity_kwh = b.capacity_kwh * self.soh_fraction
        dt_h = dt_s / 3600.0
        derate = derate_fraction(self.temperature_c)
        discharge = (self.soc_fraction - b.soc_min_fraction) * capacity_kwh
        charge = (b.soc_max_fraction - self.soc_fraction) * capacity_kwh
        max_dis = max(
            0.0, min(b.max_discharge_kw * derate, discharge * b.discharge_efficiency / dt_h)
        )
        max_chg = max(0.0, min(b.max_charge_kw * derate, charge / b.charge_efficiency / dt_h))
        return max_dis, max_chg

    def shave_room_kw(self, dt_s: float) -> float:
        """How much peak shaving may add to the setpoint: down to the reserve SoC, and
        beyond it only what lies above the import limit."""
        reserve = self.reserve_soc_fraction
        if reserve is None:
            return math.inf
        b, dt_h = self.battery, dt_s / 3600.0
        capacity_kwh = b.capacity_kwh * self.soh_fraction
        if self.soc_fraction >= reserve:
            to_reserve = (self.soc_fraction - reserve) * capacity_kwh * b.discharge_efficiency
        else:
            to_reserve = -(reserve - self.soc_fraction) * capacity_kwh / b.charge_efficiency
        return max(0.0, to_reserve / dt_h - self.setpoint_kw, self.must_shave_kw)

    def step(self, dt_s: float, now_s: float) -> None:
        with self.lock:
            b = self.battery
            max_dis, max_chg = self.available_kw(dt_s)
            given_up = min(self.spare_kw, max(0.0, self.setpoint_kw))
            wanted = self.setpoint_kw - given_up + min(self.shave_kw, self.shave_room_kw(dt_s))
            power = 0.0 if self.tripped else min(max(wanted, -max_chg), max_dis)
            self.power_kw = power
            capacity_kwh = b.capacity_kwh * self.soh_fraction
            energy_kwh = power * dt_s / 3600.0
            if power >= 0:
                self.soc_fraction -= energy_kwh / b.discharge_efficiency / capacity_kwh
            else:
                self.soc_fraction -= energy_kwh * b.charge_efficiency / capacity_kwh
            self.soc_fraction = min(1.0, max(0.0, self.soc_fraction))
            rated = max(b.max_charge_kw, b.max_discharge_kw)
            target = self.ambient_c + FULL_POWER_RISE_C * (power / rated) ** 2 + self.extra_heat_c
            self.temperature_c += (target - self.temperature_c) * (
                1.0 - math.exp(-dt_s / THERMAL_TAU_S)
            )
            # Heat ages cells: fade doubles about every 10 C above 25 C.
            heat = 2.0 ** max(0.0, (self.temperature_c - 25.0) / 10.0)
            cycles = abs(energy_kwh) / (2.0 * b.capacity_kwh)
            self.soh_fraction = max(0.0, self.soh_fraction - FADE_PER_CYCLE * cycles * heat)
