"""From a device's readings to measurements of the site's assets.

Devices name readings in their own terms (a relay board knows channels, not loads);
the site config says which asset sits behind each device and channel, so the
stored series carry the asset ids every other part of gridpilot queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from edge.protocol import unit_of
from grid.config import SiteConfig
from grid.telemetry import Measurement

_CHANNEL = re.compile(r"^ch(\d{1,2})_(.+)$")
# The meter also carries the tariff prices the simulator (or a market feed) sets.
TARIFF_QUANTITIES = frozenset({"import_price_eur_per_kwh", "export_price_eur_per_kwh"})
GRID_ASSET = "grid"
TARIFF_ASSET = "tariff"


@dataclass(frozen=True)
class SiteMap:
    site: str
    kinds: dict[str, str]  # device id -> device kind
    assets: dict[str, str]  # device id -> asset id of its own readings
    channels: dict[tuple[str, int], str]  # (board, channel) -> load id
    # (device, reading) -> (asset, quantity, unit), filled as readings are first seen;
    # the gateway caps readings per device, so this stays small.
    _series: dict[tuple[str, str], tuple[str, str, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def asset_for(self, device: str, quantity: str) -> tuple[str, str]:
        """(asset, quantity) under which a device's reading is stored."""
        match = _CHANNEL.match(quantity)
        if match and self.kinds.get(device) == "relay_board":
            channel = int(match.group(1))
            load = self.channels.get((device, channel), f"{device}-ch{channel}")
            return load, match.group(2)
        if quantity in TARIFF_QUANTITIES:
            return TARIFF_ASSET, quantity
        return self.assets.get(device, device), quantity

    def measurements(
        self, device: str, values: dict[str, float], when: datetime
    ) -> list[Measurement]:
        # Fields were checked when the payload was parsed (names, finite values,
        # aware time); skipping a second validation keeps ingest fast.
        series = self._series
        out = []
        for name, value in values.items():
            key = (device, name)
            target = series.get(key)
            if target is None:
                asset, quantity = self.asset_for(device, name)
                target = series[key] = (asset, quantity, unit_of(quantity))
            out.append(Measurement.trusted(self.site, *target, float(value), when))
        return out


def site_map(site: SiteConfig) -> SiteMap:
    a = site.assets
    assets: dict[str, str] = {}
    for battery in a.batteries:
        assets[battery.device] = battery.id
    for pv in a.pv:
        assets[pv.device] = pv.id
    for peaker in a.peakers:
        assets[peaker.device] = peaker.id
    if site.grid.meter:
        assets[site.grid.meter] = GRID_ASSET
    return SiteMap(
        site=site.site.name,
        kinds={d.id: d.kind for d in site.devices},
        assets=assets,
        channels={(ld.board, ld.channel): ld.id for ld in a.loads if ld.board and ld.channel},
    )
