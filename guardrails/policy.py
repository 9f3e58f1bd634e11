"""The rules every action is checked against, as pure functions of plain data.

`evaluate` takes the request, a snapshot of the site and the recent history, and
returns every rule it evaluated with the numbers involved: the audit log keeps
all of them, and a refusal names the first rule that said no. Nothing here talks
to a broker or a database, so the rules are tested directly and a dry run is just
`evaluate` without acting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from grid.config import SiteConfig
from grid.errors import PolicyRefusal
from guardrails.killswitch import HaltState
from guardrails.leases import Lease
from guardrails.principals import Caller, Capability

ActionKind = Literal[
    "set_relay",
    "set_battery_power",
    "set_pv_limit",
    "start_peaker",
    "stop_peaker",
    "set_peaker_power",
]


class Action(BaseModel):
    """One physical change on one asset (a load's relay, a battery, a PV inverter, a peaker)."""

    kind: ActionKind
    asset: str
    on: bool | None = None  # set_relay
    power_kw: float | None = Field(default=None, allow_inf_nan=False)  # battery/peaker/pv limit
    # set_battery_power only: discharge beyond power_kw to hold grid import to this
    import_cap_kw: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # with import_cap_kw: shave only down to this SoC while under the import limit
    reserve_soc_fraction: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    # with import_cap_kw: give up discharge while the site would import less than this
    follow_import_kw: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _has_value(self) -> Action:
        if self.kind == "set_relay" and self.on is None:
            raise ValueError("set_relay needs `on` (true or false)")
        if self.kind in ("set_battery_power", "set_pv_limit", "set_peaker_power") and (
            self.power_kw is None
        ):
            raise ValueError(f"{self.kind} needs power_kw")
        if self.import_cap_kw is not None and self.kind != "set_battery_power":
            raise ValueError(f"import_cap_kw is for set_battery_power, not {self.kind}")
        if self.import_cap_kw is None and (
            self.reserve_soc_fraction is not None or self.follow_import_kw is not None
        ):
            raise ValueError(
                "reserve_soc_fraction and follow_import_kw need import_cap_kw (peak-shaving mode)"
            )
        return self

    def describe(self) -> str:
        if self.kind == "set_relay":
            return f"switch {self.asset} {'on' if self.on else 'off'}"
        if self.power_kw is None:
            return f"{self.kind.replace('_', ' ')} {self.asset}"
        cap = "" if self.import_cap_kw is None else f", import held to {self.import_cap_kw:g} kW"
        return f"{self.kind.replace('_', ' ')} {self.asset} to {self.power_kw:g} kW{cap}"


class SiteSnapshot(BaseModel):
    """What the site looks like now, as far as the rules need to know."""

    now: datetime
    relay_on: dict[str, bool | None] = {}  # load id
    soc_fraction: dict[str, float | None] = {}  # battery id
    battery_kw: dict[str, float | None] = {}  # + discharge
    peaker_running: dict[str, bool | None] = {}
    grid_import_kw: float | None = None  # + import, - export
    device_online: dict[str, bool] = {}
    telemetry_age_s: dict[str, float | None] = {}  # asset id -> age of its newest reading


class History(BaseModel):
    """Recent acts the rules count: switchings per asset, actions per principal."""

    switches: dict[str, list[datetime]] = {}
    actions: dict[str, list[datetime]] = {}


class RuleResult(BaseModel):
    rule: str
    allowed: bool
    detail: str
    asset: str | None = None


class Decision(BaseModel):
    allowed: bool
    needs_confirmation: bool = False
    results: list[RuleResult]

    def refusal(self) -> PolicyRefusal | None:
        for result in self.results:
            if not result.allowed:
                where = f" [{result.asset}]" if result.asset else ""
                return PolicyRefusal(result.rule, result.detail + where)
        return None


TrustLookup = Callable[[str], tuple[bool, str]]
LeaseLookup = Callable[[str, str], Lease | None]


def asset_device(site: SiteConfig, action: Action) -> str | None:
    """The device a command for this action goes to, or None for an unknown asset."""
    groups = {
        "set_relay": [(ld.id, ld.board) for ld in site.assets.loads if ld.switchable],
        "set_battery_power": [(b.id, b.device) for b in site.assets.batteries],
        "set_pv_limit": [(p.id, p.device) for p in site.assets.pv],
    }
    peakers = [(g.id, g.device) for g in site.assets.peakers]
    pairs = groups.get(action.kind, peakers)
    return dict(pairs).get(action.asset)


class _Rules:
    """Collects rule results; `check` records one rule, allowed or not."""

    def __init__(self) -> None:
        self.results: list[RuleResult] = []
        self.confirm = False

    def check(self, rule: str, allowed: bool, detail: str, asset: str | None = None) -> bool:
        self.results.append(RuleResult(rule=rule, allowed=allowed, detail=detail, asset=asset))
        return allowed


def _recent(times: list[datetime], now: datetime, seconds: float) -> list[datetime]:
    return [t for t in times if now - t < timedelta(seconds=seconds)]


def evaluate(
    site: SiteConfig,
    caller: Caller,
    actions: list[Action],
    snapshot: SiteSnapshot,
    history: History,
    halt: HaltState,
    lease_blocking: LeaseLookup,
    trust: TrustLookup | None = None,
    direct: bool = True,
) -> Decision:
    """Every rule for every action. `direct` is False for plan dispatch, which was
    already selected (optimize) before it is operated and so needs no confirmation."""
    policy = site.policy
    now = snapshot.now
    r = _Rules()
    r.check(
        "role",
        caller.can(Capability.ACT),
        f"{caller.name} is a {caller.role}; acting needs agent, operator or admin",
    )
    r.check(
        "kill_switch",
        not halt.halted or caller.role == "admin",
        f"site halted by {halt.by} at {halt.since:%H:%M:%S}Z: {halt.reason}"
        if halt.halted
        else "not halted",
    )
    if policy.automated_hours and caller.automated:
        start, end = policy.automated_hours
        at = now.astimezone(site.site.tz).time()
        inside = start <= at < end if start < end else (at >= start or at < end)
        r.check(
            "time_window",
            inside,
            f"automated actions allowed {start:%H:%M}-{end:%H:%M} local; now {at:%H:%M}",
        )
    done = _recent(history.actions.get(caller.name, []), now, 60)
    limit = policy.actions_per_minute_per_principal
    r.check(
        "rate_limit",
        len(done) < limit,
        f"{len(done)} actions by {caller.name} in the last 60 s; limit {limit}",
    )
    if direct and caller.role in policy.confirm_roles:
        r.confirm = True

    for action in actions:
        _check_action(site, caller, action, snapshot, history, lease_blocking, trust, r)

    allowed = all(result.allowed for result in r.results)
    return Decision(allowed=allowed, needs_confirmation=allowed and r.confirm, results=r.results)


def _check_action(
    site: SiteConfig,
    caller: Caller,
    action: Action,
    snap: SiteSnapshot,
    history: History,
    lease_blocking: LeaseLookup,
    trust: TrustLookup | None,
    r: _Rules,
) -> None:
    asset = action.asset
    device = asset_device(site, action)
    if not r.check(
        "asset_known", device is not None, f"no asset {asset!r} that can take {action.kind}", asset
    ):
        return
    online = snap.device_online.get(device, False)
    r.check(
        "device_offline", online, f"device {device} is {'online' if online else 'offline'}", asset
    )
    if caller.automated:
        age = snap.telemetry_age_s.get(asset)
        stale_s = site.policy.stale_telemetry_s
        r.check(
            "stale_telemetry",
            age is not None and age <= stale_s,
            "no telemetry received"
            if age is None
            else f"newest telemetry is {age:.0f} s old; limit {stale_s} s",
            asset,
        )
        if trust is not None:
            trustworthy, reason = trust(asset)
            r.check("anomaly_interlock", trustworthy, reason, asset)
    lease = lease_blocking(asset, caller.name)
    r.check(
        "lease",
        lease is None,
        f"leased to {lease.holder} at priority {lease.priority} until {lease.expires_at:%H:%M:%S}Z"
        if lease
        else "no lease held by another",
        asset,
    )
    if action.kind == "set_relay":
        _check_relay(site, caller, action, snap, history, r)
    elif action.kind == "set_battery_power":
        _check_battery(site, action, snap, r)
    elif action.kind == "set_pv_limit":
        pv = next(p for p in site.assets.pv if p.id == asset)
        r.check("pv_curtailable", pv.curtailable, f"{asset} is not curtailable", asset)
        limit = action.power_kw or 0.0
        r.check(
            "pv_limit_range",
            0.0 <= limit <= pv.peak_kw,
            f"limit {limit:g} kW must be within [0, {pv.peak_kw:g}] kW",
            asset,
        )
    else:
        _check_peaker(site, action, snap, history, r)


def _check_relay(
    site: SiteConfig,
    caller: Caller,
    action: Action,
    snap: SiteSnapshot,
    history: History,
    r: _Rules,
) -> None:
    load = site.load(action.asset)
    policy = site.policy
    if load.critical and not action.on:
        if caller.automated or not caller.can(Capability.OPERATE):
            r.check(
                "critical_load",
                False,
                f"{load.id} is a critical load: it is never shed by an automated caller; "
                "an operator can switch it off for maintenance, with confirmation",
                load.id,
            )
            return
        r.confirm = True
        r.check(
            "critical_load",
            True,
            f"{load.id} is critical: operator switch-off needs confirmation",
            load.id,
        )
    current = snap.relay_on.get(load.id)
    if current is not None and current == action.on:
        r.check("relay_dwell", True, "relay already in the requested state: no switching", load.id)
        return
    switches = history.switches.get(load.id, [])
    last = max(switches) if switches else None
    since = (snap.now - last).total_seconds() if last else None
    r.check(
        "relay_dwell",
        since is None or since >= policy.relay_min_dwell_s,
        f"last switched {since:.0f} s ago; minimum dwell {policy.relay_min_dwell_s} s"
        if since is not None
        else "no recent switching",
        load.id,
    )
    hour = _recent(switches, snap.now, 3600)
    r.check(
        "relay_switch_rate",
        len(hour) < policy.relay_max_switches_per_hour,
        f"{len(hour)} switchings in the last hour; limit {policy.relay_max_switches_per_hour}",
        load.id,
    )
    if action.on and snap.grid_import_kw is not None:
        after = snap.grid_import_kw + load.nominal_kw
        r.check(
            "import_limit",
            after <= site.grid.import_limit_kw,
            f"import would reach {after:.1f} kW (now {snap.grid_import_kw:.1f} + "
            f"{load.nominal_kw:g}); limit {site.grid.import_limit_kw:g} kW",
            load.id,
        )


def _check_battery(site: SiteConfig, action: Action, snap: SiteSnapshot, r: _Rules) -> None:
    battery = next(b for b in site.assets.batteries if b.id == action.asset)
    power = action.power_kw or 0.0
    r.check(
        "battery_power_limit",
        -battery.max_charge_kw <= power <= battery.max_discharge_kw,
        f"{power:g} kW must be within [-{battery.max_charge_kw:g} (charge), "
        f"{battery.max_discharge_kw:g} (discharge)] kW",
        battery.id,
    )
    if action.import_cap_kw is not None:
        r.check(
            "import_cap_range",
            action.import_cap_kw <= site.grid.import_limit_kw,
            f"import cap {action.import_cap_kw:g} kW must be within [0, "
            f"{site.grid.import_limit_kw:g}] kW (the import limit)",
            battery.id,
        )
    soc = snap.soc_fraction.get(battery.id)
    if soc is None:
        r.check("battery_soc_limit", power == 0.0, "state of charge unknown", battery.id)
    elif power > 0:
        r.check(
            "battery_soc_limit",
            soc > battery.soc_min_fraction,
            f"SoC {soc:.2f} at or below minimum {battery.soc_min_fraction:.2f}: cannot discharge",
            battery.id,
        )
    elif power < 0:
        r.check(
            "battery_soc_limit",
            soc < battery.soc_max_fraction,
            f"SoC {soc:.2f} at or above maximum {battery.soc_max_fraction:.2f}: cannot charge",
            battery.id,
        )
    now_kw = snap.battery_kw.get(battery.id) or 0.0
    if snap.grid_import_kw is not None:
        after = snap.grid_import_kw + now_kw - power
        r.check(
            "import_limit",
            after <= site.grid.import_limit_kw,
            f"import would reach {after:.1f} kW; limit {site.grid.import_limit_kw:g} kW",
            battery.id,
        )
        r.check(
            "export_limit",
            -after <= site.grid.export_limit_kw,
            f"export would reach {-after:.1f} kW; limit {site.grid.export_limit_kw:g} kW",
            battery.id,
        )


def _check_peaker(
    site: SiteConfig, action: Action, snap: SiteSnapshot, history: History, r: _Rules
) -> None:
    peaker = next(g for g in site.assets.peakers if g.id == action.asset)
    if action.kind == "set_peaker_power":
        power = action.power_kw or 0.0
        r.check(
            "peaker_power_limit",
            peaker.min_kw <= power <= peaker.max_kw,
            f"{power:g} kW must be within [{peaker.min_kw:g}, {peaker.max_kw:g}] kW "
            "(minimum stable load to rating)",
            peaker.id,
        )
        return
    running = snap.peaker_running.get(peaker.id)
    starting = action.kind == "start_peaker"
    if running is not None and running == starting:
        r.check("peaker_min_up_down", True, "already in the requested state", peaker.id)
        return
    changes = history.switches.get(peaker.id, [])
    since = (snap.now - max(changes)).total_seconds() if changes else None
    need = peaker.min_down_s if starting else peaker.min_up_s
    what = "down" if starting else "up"
    r.check(
        "peaker_min_up_down",
        since is None or since >= need,
        f"in its state for {since:.0f} s; minimum {what} time {need} s"
        if since is not None
        else "no recent start or stop",
        peaker.id,
    )
