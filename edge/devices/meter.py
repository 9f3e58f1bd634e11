"""The grid meter at the connection point: net import, voltage, frequency, and the
tariff prices of the moment (which a real site gets from its market feed)."""

from __future__ import annotations

from typing import Any

from edge.devices.base import Twin


class MeterTwin(Twin):
    kind = "meter"

    power_kw = 0.0  # + import from the grid, - export
    voltage_v = 230.0
    frequency_hz = 50.0
    import_price_eur_per_kwh = 0.0
    export_price_eur_per_kwh = 0.0
    import_kwh = 0.0
    export_kwh = 0.0

    def values(self) -> dict[str, float]:
        return {
            "power_kw": round(self.power_kw, 4),
            "voltage_v": round(self.voltage_v, 2),
            "frequency_hz": round(self.frequency_hz, 4),
            "import_kwh": round(self.import_kwh, 4),
            "export_kwh": round(self.export_kwh, 4),
            "import_price_eur_per_kwh": self.import_price_eur_per_kwh,
            "export_price_eur_per_kwh": self.export_price_eur_per_kwh,
        }

    def state(self) -> dict[str, Any]:
        return {}

    def step(self, dt_s: float, now_s: float) -> None:
        with self.lock:
            energy_kwh = self.power_kw * dt_s / 3600.0
            if energy_kwh >= 0:
                self.import_kwh += energy_kwh
            else:
                self.export_kwh -= energy_kwh
