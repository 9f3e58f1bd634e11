"""The grid-response actor: the site's automatic first aid, at the highest agent priority.

When the grid is unstable — frequency outside its band, a steep net-load ramp, or
import near the limit — it acts one step per observation, cheapest first: battery to
full discharge (or charge, for over-frequency), then the peaker, then sheddable loads
by priority. Once the site has been calm (inside the narrower inner band, import well
below the limit) for `calm_s` simulated seconds, it undoes what it did, one step at a
time and only where the site's rules allow (relay dwell, peaker minimum up time),
then releases its leases. The gap between the trip band and the calm band, and the
hold time, are the hysteresis that stops it chattering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agents import calls
from agents.client import Session, ToolResult
from agents.daemon import Decision, observe_state
from agents.view import Assets, State, parse_assets, parse_state

PRIORITY = 80  # the daemon role's ceiling: outranks every economic daemon, below operators


@dataclass(frozen=True)
class Settings:
    band_hz: tuple[float, float] = (49.8, 50.2)  # act outside this
    calm_band_hz: tuple[float, float] = (49.9, 50.1)  # restore only inside this
    ramp_kw_per_min: float = 20.0  # net-load rise that counts as a steep ramp
    near_limit_fraction: float = 0.9  # of the import limit
    calm_fraction: float = 0.75
    escalate_s: float = 30.0  # simulated s between escalation steps while trouble lasts
    calm_s: float = 120.0  # simulated s of calm before restoring
    restore_step_kw: float = 8.0  # battery eased back by at most this per step
    relay_dwell_s: float = 300.0  # the site's dwell: restoring waits for it
    peaker_min_up_s: float = 1800.0
    lease_s: float = 900.0


@dataclass
class Memory:
    engaged_since: datetime | None = None
    last_step_at: datetime | None = None
    calm_since: datetime | None = None
    battery_set: str | None = None  # battery we commanded
    peaker_started: dict[str, datetime] = field(default_factory=dict)
    shed: dict[str, datetime] = field(default_factory=dict)
    leased: set[str] = field(default_factory=set)
    last_seen: tuple[datetime, float] | None = None  # (time, import kW) for the ramp


def trouble(state: State, assets: Assets, cfg: Settings, memory: Memory) -> list[str]:
    """Why the grid counts as unstable now (empty: it does not)."""
    why = []
    f = state.frequency_hz
    if f is not None and not cfg.band_hz[0] <= f <= cfg.band_hz[1]:
        why.append(f"frequency {f:.3f} Hz outside {cfg.band_hz[0]:g}-{cfg.band_hz[1]:g} Hz")
    imp = state.grid_import_kw
    limit = assets.import_limit_kw
    if imp is not None and imp >= cfg.near_limit_fraction * limit:
        why.append(f"import {imp:.1f} kW near the {limit:g} kW limit")
    if imp is not None and memory.last_seen is not None:
        then, before = memory.last_seen
        minutes = (state.time - then).total_seconds() / 60
        rise = imp - before  # only a rise: a fall is often our own doing, and harmless
        if minutes > 0 and rise / minutes >= cfg.ramp_kw_per_min and rise >= 0.2 * limit:
            why.append(f"net load ramped {rise:+.1f} kW in {minutes * 60:.0f} s")
    return why


def calm(state: State, assets: Assets, cfg: Settings) -> bool:
    f = state.frequency_hz
    in_band = f is None or cfg.calm_band_hz[0] <= f <= cfg.calm_band_hz[1]
    imp = state.grid_import_kw
    return in_band and (imp is None or imp < cfg.calm_fraction * assets.import_limit_kw)


def _since(now: datetime, then: datetime | None) -> float:
    return float("inf") if then is None else (now - then).total_seconds()


def _hold(asset: str, memory: Memory, cfg: Settings, why: str) -> list[calls.Call]:
    if asset in memory.leased:
        return []
    return [calls.lease(asset, PRIORITY, cfg.lease_s, f"grid response: {why}")]


def decide(state: State, assets: Assets, memory: Memory, cfg: Settings) -> list[Decision]:
    """At most one step per observation. Pure: the caller applies `effect`s to memory."""
    if state.halted:
        return []
    why = trouble(state, assets, cfg, memory)
    now = state.time
    if why:
        reason = "; ".join(why)
        if _since(now, memory.last_step_at) < cfg.escalate_s:
            return []  # give the last step time to work
        over = state.frequency_hz is not None and state.frequency_hz > cfg.band_hz[1]
        return _escalate(state, assets, memory, cfg, reason, over)
    if memory.engaged_since is None or not calm(state, assets, cfg):
        return []
    if _since(now, memory.calm_since) < cfg.calm_s:
        return []
    return _restore(state, assets, memory, cfg)


def _escalate(
    state: State, assets: Assets, memory: Memory, cfg: Settings, reason: str, over: bool
) -> list[Decision]:
    imp = state.grid_import_kw or 0.0
    for b in assets.of("battery"):
        if memory.battery_set is not None:
            break
        soc = state.soc_fraction.get(b.id)
        now_kw = state.battery_kw.get(b.id) or 0.0
        if soc is None:
            continue
        if over:
            room = assets.import_limit_kw - imp - now_kw
            kw = -min(b.limits["max_charge_kw"], max(0.0, room))
            usable = soc < b.limits["soc_max_fraction"] - 0.02
        else:
            room = assets.export_limit_kw + imp + now_kw  # stay inside the export limit
            kw = min(b.limits["max_discharge_kw"], max(0.0, 0.95 * room))
            usable = soc > b.limits["soc_min_fraction"] + 0.02
        if usable and abs(kw) >= 1.0:
            what = "charge" if over else "discharge"
            return [
                Decision(
                    reason=f"{reason}: {what} {b.id} at {abs(kw):.1f} kW",
                    calls=[
                        *_hold(b.id, memory, cfg, reason),
                        calls.set_power(b.id, kw, f"grid response: {reason}"),
                    ],
                    effect=f"battery:{b.id}",
                )
            ]
    if over:
        return []  # more load or less generation is all that helps, and the battery did it
    for g in assets.of("peaker"):
        running = (state.peaker_kw.get(g.id) or 0.0) > 0.0
        if g.id not in memory.peaker_started and not running:
            kw = g.limits["max_kw"]
            return [
                Decision(
                    reason=f"{reason}: battery not enough, start {g.id} at {kw:g} kW",
                    calls=[
                        *_hold(g.id, memory, cfg, reason),
                        calls.set_power(g.id, kw, f"grid response: {reason}"),
                    ],
                    effect=f"peaker:{g.id}",
                )
            ]
    for load in assets.sheddable():
        if load.id not in memory.shed and state.relay_on(load.id):
            return [
                Decision(
                    reason=f"{reason}: shed {load.id} (priority {load.priority})",
                    calls=[
                        *_hold(load.id, memory, cfg, reason),
                        calls.relay(load.id, False, f"grid response: {reason}"),
                    ],
                    effect=f"shed:{load.id}",
                )
            ]
    return []


def _restore(state: State, assets: Assets, memory: Memory, cfg: Settings) -> list[Decision]:
    now, imp = state.time, state.grid_import_kw or 0.0
    if _since(now, memory.last_step_at) < cfg.escalate_s:
        return []  # one undoing step at a time, each given time to settle
    # Highest priority back first; each only if it fits well under the limit.
    for load in sorted(assets.sheddable(), key=lambda a: -(a.priority or 0)):
        if load.id not in memory.shed:
            continue
        if _since(now, memory.shed[load.id]) < cfg.relay_dwell_s:
            return []  # wait for the dwell rather than be refused
        if imp + load.limits["nominal_kw"] > cfg.calm_fraction * assets.import_limit_kw:
            return []
        return [
            Decision(
                reason=f"stable for {cfg.calm_s:g} s: restore {load.id}",
                calls=[calls.relay(load.id, True, "grid response: stable again, restoring")],
                effect=f"restored:{load.id}",
            )
        ]
    for g, started in list(memory.peaker_started.items()):
        if _since(now, started) < cfg.peaker_min_up_s:
            return []
        return [
            Decision(
                reason=f"stable: stop {g}",
                calls=[calls.set_power(g, 0.0, "grid response: stable again, stopping")],
                effect=f"stopped:{g}",
            )
        ]
    if memory.battery_set is not None:
        b = memory.battery_set
        now_kw = state.battery_kw.get(b) or 0.0
        if abs(now_kw) > cfg.restore_step_kw:  # ease off: a sudden step is a ramp too
            eased = now_kw - cfg.restore_step_kw * (1 if now_kw > 0 else -1)
            return [
                Decision(
                    reason=f"stable: easing {b} from {now_kw:.1f} to {eased:.1f} kW",
                    calls=[calls.set_power(b, eased, "grid response: stable again, easing off")],
                    effect=f"eased:{b}",
                )
            ]
        return [
            Decision(
                reason=f"stable: {b} back to idle, handing it back",
                calls=[calls.set_power(b, 0.0, "grid response: stable again, battery idle")],
                effect=f"idle:{b}",
            )
        ]
    return [
        Decision(
            reason="stable and everything restored: releasing leases",
            calls=[calls.release(a) for a in sorted(memory.leased)],
            effect="released",
        )
    ]


def remember(memory: Memory, decision: Decision, now: datetime) -> None:
    """Apply a decision's effect once all its calls succeeded."""
    kind, _, asset = decision.effect.partition(":")
    for call in decision.calls:
        if call.tool == "lease" and call.arguments.get("op") == "acquire":
            memory.leased.add(call.arguments["asset"])
    if kind in ("battery", "peaker", "shed"):
        memory.engaged_since = memory.engaged_since or now
        memory.last_step_at = now
        memory.calm_since = None
    if kind == "battery":
        memory.battery_set = asset
    elif kind == "peaker":
        memory.peaker_started[asset] = now
    elif kind == "shed":
        memory.shed[asset] = now
    if kind in ("restored", "stopped", "eased", "idle"):
        memory.last_step_at = now
    if kind == "restored":
        memory.shed.pop(asset, None)
    elif kind == "stopped":
        memory.peaker_started.pop(asset, None)
    elif kind == "idle":
        memory.battery_set = None
    elif kind == "released":
        memory.leased.clear()
        memory.engaged_since = None


class GridResponse:
    role = "grid-response"
    priority = PRIORITY

    def __init__(self, settings: Settings | None = None, interval_s: float = 1.0) -> None:
        self.settings = settings or Settings()
        self.interval_s = interval_s
        self.memory = Memory()
        self._assets: Assets | None = None
        self._now: datetime | None = None

    async def observe(self, session: Session) -> tuple[State, Assets] | None:
        if self._assets is None:
            found = await session.call(calls.list_assets().tool)
            if not found.ok:
                return None
            self._assets = parse_assets(found.data)
        seen = await observe_state(session)
        return (parse_state(seen.data), self._assets) if seen.ok else None

    def decide(self, seen: tuple[State, Assets]) -> list[Decision]:
        state, assets = seen
        self._now = state.time
        decisions = decide(state, assets, self.memory, self.settings)
        if self.memory.engaged_since is not None and calm(state, assets, self.settings):
            self.memory.calm_since = self.memory.calm_since or state.time
        elif not calm(state, assets, self.settings):
            self.memory.calm_since = None
        if state.grid_import_kw is not None:
            self.memory.last_seen = (state.time, state.grid_import_kw)
        return decisions

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        assert self._now is not None
        remember(self.memory, decision, self._now)

    def held(self) -> list[str]:
        return sorted(self.memory.leased)
