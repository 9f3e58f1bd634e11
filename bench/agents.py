"""The arbitrage daemon's cost against a rule-based controller and no control, on the
same simulated afternoon and evening, each acting through the real MCP server over
HTTP on a real mosquitto.

Each controller gets a fresh site starting at the same simulated time (same profiles,
seed 0) with a week of seeded history for the forecasters; the clock runs SPEED times
faster than the wall. Cost is read back from the stored grid meter: energy at the
time-of-use prices plus the demand charge at its full rate on the run's increase over
the billing period's peak before it (15-min means). Switchings come from the audit
log. (The simulator's noise follows wall-clock step timing, so runs are the same day,
not bit-identical.)

Run as `python -m bench.agents [HOURS] [SPEED]` (defaults 6 h at 240x), and
`python -m bench.agents peak [HOURS] [SPEED]` for the peak shaver against rule-based
shedding on the EV morning peak (4 h at 240x).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from agents.arbitrage import Arbitrage, Settings
from agents.calls import relay, set_power
from agents.client import Session, Target, ToolResult
from agents.daemon import Decision, observe_state, run
from agents.peak_shaver import PeakShaver
from agents.peak_shaver import Settings as ShaverSettings
from agents.view import State, parse_state
from app.demo import seed_history
from app.runtime import Runtime, open_runtime
from bench._report import report
from grid.clock import SimClock
from grid.config import load_site
from grid.errors import PolicyRefusal
from grid.tariff import billing_period_start, prices_eur_per_kwh
from guardrails.policy import Action
from guardrails.principals import caller_named
from mcp_server.http import BackgroundServer, http_app
from tests.services.mosquitto import MosquittoServer
from tests.services.process import free_port

EXAMPLE = Path(__file__).parents[1] / "examples" / "site.toml"
START = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)  # 13:00 in Berlin: the evening peak ahead
PEAK_START = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)  # 07:00 in Berlin: the EV morning peak
PEAK_THRESHOLD_KW = 28.0
SHEDDABLE = {"ev-chargers": 2, "hvac-office": 4}  # load -> priority (shed lowest first)
NOMINAL = {"ev-chargers": 22.0, "hvac-office": 10.0}


class RuleBased:
    """Self-consumption through the tools: the battery covers the site's net load
    (charges from surplus PV), within its power and SoC limits; no look-ahead."""

    role = "agent"
    priority = 30
    interval_s = 1.0

    def __init__(self) -> None:
        self.last_kw: float | None = None

    async def observe(self, session: Session) -> State | None:
        seen = await observe_state(session)
        return parse_state(seen.data) if seen.ok else None

    def decide(self, state: State) -> list[Decision]:
        if state.grid_import_kw is None:
            return []
        soc = state.soc_fraction.get("battery") or 0.5
        net = state.grid_import_kw + (state.battery_kw.get("battery") or 0.0)
        want = max(-25.0, min(25.0, net))
        if (want > 0 and soc <= 0.12) or (want < 0 and soc >= 0.93):
            want = 0.0
        if self.last_kw is not None and abs(want - self.last_kw) < 2.0:
            return []
        return [
            Decision(
                reason=f"net {net:.1f} kW", calls=[set_power("battery", want, "rule: self-use")]
            )
        ]

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        self.last_kw = decision.calls[0].arguments["power_kw"]

    def held(self) -> list[str]:
        return []


class RuleShedding(RuleBased):
    """The rule-based peak controller: self-consumption battery, and above the
    threshold shed the lowest-priority load that is on; restore once the import has
    room for it again (a refusal, e.g. the dwell, is simply tried again later)."""

    def __init__(self, threshold_kw: float) -> None:
        super().__init__()
        self.threshold_kw = threshold_kw
        self.shed: list[str] = []

    def decide(self, state: State) -> list[Decision]:
        out = super().decide(state)
        imp = state.grid_import_kw
        if imp is None:
            return out
        on = [r.load for r in state.relays if r.on and r.load in SHEDDABLE]
        if imp > self.threshold_kw and on:
            load = min(on, key=SHEDDABLE.get)
            out.append(Decision(reason=f"shed {load}", calls=[relay(load, False, "rule: peak")]))
        elif self.shed and imp + NOMINAL[self.shed[-1]] < self.threshold_kw - 3:
            load = self.shed[-1]
            out.append(Decision(reason=f"restore {load}", calls=[relay(load, True, "rule: room")]))
        return out

    def acted(self, decision: Decision, results: list[ToolResult]) -> None:
        call = decision.calls[0]
        if call.tool != "toggle_relay":
            return super().acted(decision, results)
        if call.arguments["on"]:
            self.shed.remove(call.arguments["load"])
        else:
            self.shed.append(call.arguments["load"])


def site_in(root: Path, broker_url: str):
    site = load_site(EXAMPLE)
    settings = site.settings.model_copy(
        update={
            "store_url": f"sqlite:///{root / 'bench.db'}",
            "state_dir": root / "state",
            "broker_url": broker_url,
        }
    )
    # At 240x a board's 60-s heartbeat revert is 250 ms of wall time: one scheduler stall
    # on a busy machine and the sheddable loads drop to the safe state, whoever is in
    # control. The bench measures the controllers, not the machine's load.
    devices = [
        d.model_copy(update={"revert_s": 3600}) if d.kind == "relay_board" else d
        for d in site.devices
    ]
    return site.model_copy(update={"settings": settings, "devices": devices})


SETUP = "admin"  # the bench's own principal: its set-up is not the controller's doing


def loads_on(rt: Runtime) -> None:
    """Close every switchable relay, as the site runs day to day. The boards boot in
    their safe state (non-critical loads off); left there, a controller's day would be
    judged on a site that serves neither the EV chargers nor the office."""
    admin = caller_named(rt.site, SETUP)
    wanted = [ld.id for ld in rt.site.assets.loads if ld.switchable]
    for _ in range(100):
        off = [ld for ld in wanted if rt.snapshot().relay_on.get(ld) is not True]
        if not off:
            return
        with contextlib.suppress(PolicyRefusal):  # devices not online yet
            rt.actuator.request(
                admin,
                "toggle_relay",
                [Action(kind="set_relay", asset=ld, on=True) for ld in off],
                {"reason": "bench: every load on, as the site runs"},
                confirmed=True,  # the bench stands for the person at the console
            )
        time.sleep(0.2)
    raise RuntimeError(f"relays still off: {off}")


def cost(rt: Runtime, start: datetime, end: datetime) -> dict[str, float]:
    site = rt.site
    windows = rt.store.query(
        site.site.name, "grid", "power_kw", start, end, window_s=900, aggregate="mean"
    )
    prices = prices_eur_per_kwh(site, [w.time for w in windows])
    energy = sum(
        (max(w.value, 0) * p_in - max(-w.value, 0) * p_out) * 0.25
        for w, (p_in, p_out) in zip(windows, prices, strict=True)
    )
    peak = max((w.value for w in windows), default=0.0)
    # The bill charges the billing period's peak once: what a day adds is the full rate
    # on its increase over the peak the period had reached before it (same 15-min means).
    before = rt.store.query(
        site.site.name,
        "grid",
        "power_kw",
        billing_period_start(site, start),
        start,
        window_s=900,
        aggregate="mean",
    )
    peak_before = max((w.value for w in before), default=0.0)
    demand = site.tariff.demand_charge_eur_per_kw * max(0.0, peak - peak_before)
    acted = [
        r for r in rt.actuator.audit.query(since=start, outcome="executed") if r.principal != SETUP
    ]
    switches = [
        a
        for r in acted
        for a in r.arguments.get("applied", [])
        if a["kind"] in ("set_relay", "start_peaker", "stop_peaker")
    ]
    return {
        "energy": energy,
        "peak": peak,
        "peak_before": peak_before,
        "demand": demand,
        "total": energy + demand,
        "switchings": len(switches),
        "switched": [
            f"{a['asset']} {'on' if a.get('on') else 'off'}"
            if a["kind"] == "set_relay"
            else f"{a['asset']} {a['kind']}"
            for a in switches
        ],
        "actions": len(acted),
    }


def one_run(
    name: str,
    daemon: Any,
    token: str,
    hours: float,
    speed: float,
    broker,
    start: datetime = START,
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        site = site_in(Path(tmp), broker.url)
        rt = open_runtime(site, clock=SimClock(start=start, speed=speed), simulate=True)
        port = free_port()
        server = BackgroundServer(http_app(rt, "127.0.0.1", port), "127.0.0.1", port)
        try:
            server.start()
            seed_history(rt)
            loads_on(rt)
            end = start + timedelta(hours=hours)

            async def main() -> None:
                target = Target(url=f"http://127.0.0.1:{port}/mcp", token=token)
                async with Session(target) as session, anyio.create_task_group() as tg:
                    if daemon is not None:
                        tg.start_soon(lambda: run(daemon, session))
                    while rt.clock.now() < end:
                        await anyio.sleep(0.5)
                    tg.cancel_scope.cancel()

            anyio.run(main)
            rt.field_side.gateway.flush()
            return cost(rt, start, end)
        finally:
            server.stop()
            rt.close()


def peak_table(hours: float, speed: float, broker) -> None:
    def run_one(daemon: Any, token: str) -> dict:
        return one_run("peak", daemon, token, hours, speed, broker, PEAK_START)

    shaver = PeakShaver(ShaverSettings(threshold_kw=PEAK_THRESHOLD_KW), interval_s=1.0)
    runs = {
        "no control": run_one(None, "demo-viewer-token"),
        "rule-based shedding": run_one(RuleShedding(PEAK_THRESHOLD_KW), "demo-agent-token"),
        "peak-shaver daemon": run_one(shaver, "demo-peak-shaving-token"),
    }
    rows = [
        [
            name,
            f"{r['peak']:.1f}",
            "yes" if r["peak"] <= PEAK_THRESHOLD_KW else "no",
            str(r["switchings"]),
            str(r["actions"]),
            f"{r['total']:.2f}",
        ]
        for name, r in runs.items()
    ]
    report(
        "agents_peak",
        f"Peak shaving through MCP: {hours:g} h from {PEAK_START:%Y-%m-%d %H:%M} UTC at "
        f"{speed:g}x, threshold {PEAK_THRESHOLD_KW:g} kW",
        [
            "controller",
            "peak kW (15-min mean)",
            "under threshold",
            "switchings",
            "actions",
            "total EUR",
        ],
        rows,
        notes=[
            "Every load on at the start (the boards boot with sheddable loads off). Relays "
            "switched: "
            + "; ".join(f"{name}: {', '.join(r['switched']) or 'none'}" for name, r in runs.items())
        ],
    )


def main() -> None:
    if sys.argv[1:2] == ["peak"]:
        hours = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
        speed = float(sys.argv[3]) if len(sys.argv) > 3 else 240.0
        with tempfile.TemporaryDirectory() as tmp:
            broker = MosquittoServer(Path(tmp))
            broker.start()
            try:
                peak_table(hours, speed, broker)
            finally:
                broker.stop()
        return
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    speed = float(sys.argv[2]) if len(sys.argv) > 2 else 240.0
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(Path(tmp))
        broker.start()
        try:
            runs = {
                "no control": one_run("none", None, "demo-viewer-token", hours, speed, broker),
                "rule-based (self-consumption)": one_run(
                    "rule", RuleBased(), "demo-agent-token", hours, speed, broker
                ),
                "arbitrage daemon": one_run(
                    "arbitrage",
                    Arbitrage(Settings(horizon_hours=min(24.0, hours + 6)), interval_s=1.0),
                    "demo-arbitrage-token",
                    hours,
                    speed,
                    broker,
                ),
            }
        finally:
            broker.stop()
    base = runs["rule-based (self-consumption)"]["total"]
    rows = [
        [
            name,
            f"{r['energy']:.2f}",
            f"{r['peak']:.1f}",
            f"{r['demand']:.2f}",
            f"{r['total']:.2f}",
            f"{r['total'] / base:.2f}" if base else "-",
            str(r["actions"]),
            str(r["switchings"]),
        ]
        for name, r in runs.items()
    ]
    report(
        "agents",
        f"Daemons through MCP: {hours:g} h from {START:%Y-%m-%d %H:%M} UTC at {speed:g}x",
        [
            "controller",
            "energy EUR",
            "peak kW",
            "demand EUR (over period peak)",
            "total EUR",
            "vs rule-based",
            "actions",
            "switchings",
        ],
        rows,
        notes=[
            "Each controller acts only through the MCP tools over HTTP (its own token); "
            "cost from the stored grid meter, 15-min means."
        ],
    )


if __name__ == "__main__":
    main()
