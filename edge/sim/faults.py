"""The faults a simulated site can suffer, and scenario files that schedule them.

Each fault leaves its own signature in the stored telemetry, which is what the
anomaly detection and the guardrails' interlocks are tested against:

| kind | device | what happens (magnitude) |
|---|---|---|
| pv_shading | PV inverter | output loses a share of the irradiance (0.7) |
| voltage_spike / voltage_sag | meter or board | site voltage up / down by a share (0.15 / 0.2) |
| battery_overtemp | battery | cells heat towards ambient + magnitude C (40); power derates |
| inverter_trip | battery or PV | output drops to zero |
| soc_bias | battery | reported SoC = true + magnitude (0.15) |
| stuck_sensor | any | `quantity` (or every reading) repeats its value at the onset |
| dropped_sensor | any | `quantity` (or every reading) is missing; the device stays online |
| device_offline | any | the device goes offline: no telemetry, no commands |
| false_data_injection | any | reported `quantity` (power_kw) = true + magnitude (-10) |
| frequency_sag | meter | weak grid: frequency falls magnitude Hz (0.5) per import limit imported |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.protocol import Quantity
from grid.config import Ident, SiteConfig, format_validation_error, read_toml
from grid.errors import ConfigError

FaultKind = Literal[
    "pv_shading",
    "voltage_spike",
    "voltage_sag",
    "battery_overtemp",
    "inverter_trip",
    "soc_bias",
    "stuck_sensor",
    "dropped_sensor",
    "device_offline",
    "false_data_injection",
    "frequency_sag",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

DEFAULT_MAGNITUDE: dict[str, float] = {
    "pv_shading": 0.7,
    "voltage_spike": 0.15,
    "voltage_sag": 0.2,
    "battery_overtemp": 40.0,
    "soc_bias": 0.15,
    "false_data_injection": -10.0,
    "frequency_sag": 0.5,
}
# Which device kinds a fault can hit; absent means any.
DEVICE_KINDS: dict[str, tuple[str, ...]] = {
    "pv_shading": ("pv_inverter",),
    "voltage_spike": ("meter", "relay_board"),
    "voltage_sag": ("meter", "relay_board"),
    "battery_overtemp": ("battery_inverter",),
    "inverter_trip": ("battery_inverter", "pv_inverter"),
    "soc_bias": ("battery_inverter",),
    "frequency_sag": ("meter",),
}


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    device: Ident
    magnitude: float | None = None
    quantity: Quantity | None = None
    # Simulated seconds until the fault clears by itself; None lasts until cleared.
    for_s: Annotated[float, Field(gt=0.0, le=30 * 86_400.0)] | None = None

    @property
    def size(self) -> float:
        if self.magnitude is not None:
            return self.magnitude
        return DEFAULT_MAGNITUDE.get(self.kind, 0.0)

    def check(self, site: SiteConfig) -> None:
        """ConfigError unless the device exists and can suffer this fault."""
        try:
            device = site.device(self.device)
        except KeyError:
            known = ", ".join(d.id for d in site.devices)
            raise ConfigError(
                f"fault.device = {self.device!r} is not a device of site {site.site.name} "
                f"(devices: {known})"
            ) from None
        allowed = DEVICE_KINDS.get(self.kind)
        if allowed and device.kind not in allowed:
            raise ConfigError(
                f"fault.kind = {self.kind!r} needs a {' or '.join(allowed)} device, but "
                f"{self.device!r} is a {device.kind}"
            )
        if self.kind in ("pv_shading",) and not 0.0 <= self.size <= 1.0:
            raise ConfigError(f"fault.magnitude = {self.size} must be a share in [0, 1]")
        if self.kind in ("voltage_spike", "voltage_sag") and not 0.0 <= self.size <= 0.9:
            raise ConfigError(f"fault.magnitude = {self.size} must be a share in [0, 0.9]")


class FaultControl(BaseModel):
    """A message on the simulator's fault topic: inject `fault`, or clear one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    action: Literal["inject", "clear"]
    fault: Fault | None = None
    kind: FaultKind | None = None
    device: Ident | None = None


class ScheduledFault(Fault):
    at_s: Annotated[float, Field(ge=0.0, description="simulated seconds after the start")]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    faults: list[ScheduledFault] = []

    def check(self, site: SiteConfig) -> None:
        for fault in self.faults:
            fault.check(site)


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file: `[[faults]]` tables with at_s, kind, device and optional
    magnitude, quantity and for_s."""
    path = Path(path)
    raw = read_toml(path, "scenario")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
