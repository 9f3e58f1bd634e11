"""The site as the rules see it, read from the gateway's live state cache."""

from __future__ import annotations

from datetime import datetime

from edge.mapping import GRID_ASSET
from edge.state import LiveState
from grid.config import SiteConfig
from guardrails.policy import SiteSnapshot


def _value(live: LiveState, asset: str, quantity: str) -> float | None:
    found = live.latest(asset, quantity)
    return None if found is None else found.value


def site_snapshot(site: SiteConfig, live: LiveState, now: datetime) -> SiteSnapshot:
    devices = live.snapshot()
    relay_on: dict[str, bool | None] = {}
    for load in site.assets.loads:
        # The board's acknowledged state is newer than its last telemetry after a command.
        board = devices.get(load.board) if load.board is not None else None
        relays = board.state.get("relays") if board is not None else None
        if isinstance(relays, list) and load.channel and len(relays) >= load.channel:
            relay_on[load.id] = bool(relays[load.channel - 1])
        else:
            flag = _value(live, load.id, "relay_on")
            relay_on[load.id] = None if flag is None else flag > 0.5
    peaker_running: dict[str, bool | None] = {}
    for peaker in site.assets.peakers:
        # A starting peaker counts as on: its minimum up time runs from the start command.
        mode = devices[peaker.device].state.get("mode") if peaker.device in devices else None
        if mode is None:
            flag = _value(live, peaker.id, "running")
            peaker_running[peaker.id] = None if flag is None else flag > 0.5
        else:
            peaker_running[peaker.id] = mode != "off"
    ages: dict[str, float | None] = {}
    for asset in (
        [ld.id for ld in site.assets.loads]
        + [b.id for b in site.assets.batteries]
        + [p.id for p in site.assets.pv]
        + [g.id for g in site.assets.peakers]
    ):
        ages[asset] = live.age_s(asset, "power_kw", now)
    return SiteSnapshot(
        now=now,
        relay_on=relay_on,
        soc_fraction={b.id: _value(live, b.id, "soc_fraction") for b in site.assets.batteries},
        battery_kw={b.id: _value(live, b.id, "power_kw") for b in site.assets.batteries},
        peaker_running=peaker_running,
        grid_import_kw=_value(live, GRID_ASSET, "power_kw"),
        device_online={d: s.online for d, s in devices.items()},
        telemetry_age_s=ages,
    )
