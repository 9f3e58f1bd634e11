"""Small hand-made sites for optimizer tests."""

from __future__ import annotations

from typing import Any

from grid.config import SiteConfig, parse_site


def one_battery_site(name: str, **battery: Any) -> SiteConfig:
    """A battery `b` (its inverter `inv`) alone on a 100 kW import, hourly steps, a flat
    0.1 EUR/kWh import price; `battery` sets the battery's fields."""
    return parse_site(
        {
            "site": {"name": name, "step_s": 3600},
            "grid": {"import_limit_kw": 100, "export_limit_kw": 0},
            "assets": {"batteries": [{"id": "b", "device": "inv", **battery}]},
            "tariff": {
                "import_periods": [
                    {"start": "00:00:00", "end": "00:00:00", "price_eur_per_kwh": 0.1}
                ]
            },
            "devices": [{"id": "inv", "kind": "battery_inverter"}],
        }
    )
