"""Device twins that speak the field protocol, one module per kind of device."""

from __future__ import annotations

from edge.devices.base import Twin
from edge.devices.battery import BatteryTwin
from edge.devices.meter import MeterTwin
from edge.devices.peaker import PeakerTwin
from edge.devices.pv import PVTwin
from edge.devices.relay_board import RelayBoardTwin
from grid.clock import Clock
from grid.config import SiteConfig


def make_twins(site: SiteConfig, clock: Clock) -> dict[str, Twin]:
    """One twin per device of the site config, by device id."""
    name = site.site.name
    by_device: dict[str, Twin] = {}
    for device in site.devices:
        if device.kind == "relay_board":
            by_device[device.id] = RelayBoardTwin(name, device, clock)
        elif device.kind == "meter":
            by_device[device.id] = MeterTwin(name, device, clock)
    for battery in site.assets.batteries:
        by_device[battery.device] = BatteryTwin(name, site.device(battery.device), clock, battery)
    for pv in site.assets.pv:
        by_device[pv.device] = PVTwin(name, site.device(pv.device), clock, pv)
    for peaker in site.assets.peakers:
        by_device[peaker.device] = PeakerTwin(name, site.device(peaker.device), clock, peaker)
    return by_device


__all__ = [
    "BatteryTwin",
    "MeterTwin",
    "PVTwin",
    "PeakerTwin",
    "RelayBoardTwin",
    "Twin",
    "make_twins",
]
