"""`gridpilot demo`: the whole site on embedded defaults, in one process.

Embedded broker, the site simulator on a fast simulated clock, the gateway, SQLite,
the guardrails, the MCP server over HTTP on loopback and the dashboard beside it. It
prints the addresses (dashboard, MCP endpoint, MQTT broker), the demo tokens and a
Claude Desktop snippet, seeds an empty store with a week of simulated history, makes
one plan through the same tool functions an agent calls, injects a couple of scripted
faults, and shows the site's state until Ctrl-C (or for `--seconds`).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents.client import Target
from agents.fleet import Fleet
from app.runtime import Runtime, open_runtime
from edge.sim import Fault
from grid.config import SiteConfig, hash_token, load_site
from grid.profiles import as_telemetry, generate
from guardrails.principals import caller_named
from mcp_server.http import BackgroundServer, http_app
from tools import plan, state


def demo_tokens(site: SiteConfig) -> dict[str, str]:
    """The demo tokens (`demo-<name>-token`) that this site file accepts."""
    return {
        p.name: f"demo-{p.name}-token"
        for p in site.principals
        if p.token_sha256 == hash_token(f"demo-{p.name}-token")
    }


HISTORY_DAYS = 7
STATUS_EVERY_S = 5.0


def scripted_faults(site: SiteConfig) -> list[tuple[float, Fault, str]]:
    """(wall seconds after the first plan, fault, what a person sees): a passing cloud
    on the PV, then the peaker's controller dropping off the network for a while; for
    whichever of those devices the site has."""
    kinds = {d.kind: d.id for d in reversed(site.devices)}  # the first of each kind
    out = []
    if pv := kinds.get("pv_inverter"):
        shading = Fault(kind="pv_shading", device=pv, magnitude=0.7, for_s=2 * 3600)
        out.append((10.0, shading, f"{pv} output drops by 70 % for two simulated hours"))
    if peaker := kinds.get("peaker"):
        offline = Fault(kind="device_offline", device=peaker, for_s=1800)
        out.append((25.0, offline, f"{peaker} goes offline for 30 simulated minutes"))
    return out


def seed_history(rt: Runtime, days: int = HISTORY_DAYS) -> int:
    """Fill an empty store with `days` of the simulator's own profiles (seed 0, as the
    demo's simulator) up to the current step, so the first forecast has days to go by
    instead of the no-history fallback. Returns the points written (0: had history)."""
    site, now = rt.site, rt.clock.now()
    loads = [ld.id for ld in site.assets.loads]
    if not loads or rt.store.query(
        site.site.name, loads[0], "power_kw", now - timedelta(days=1), now - timedelta(hours=1)
    ):
        return 0
    step_s = site.site.step_s
    end = now - timedelta(seconds=now.timestamp() % step_s)
    steps = days * 86_400 // step_s
    points = as_telemetry(site, generate(site, end - timedelta(seconds=steps * step_s), steps))
    rt.store.write(points)
    return len(points)


def _kw(value: float | None) -> str:
    return "-" if value is None else f"{value:6.1f}"


def status_line(rt: Runtime) -> str:
    s = state.grid_state(rt, caller_named(rt.site, rt.site.principals[0].name))
    off = [r.load for r in s.relays if r.on is False]
    soc = ", ".join(f"{k} {v:.0%}" for k, v in s.soc_fraction.items() if v is not None)
    return (
        f"{s.time.astimezone(rt.site.site.tz):%a %H:%M}  grid {_kw(s.grid_import_kw)} kW  "
        f"load {_kw(s.load_kw)} kW  pv {_kw(s.pv_kw)} kW  battery {soc or '-'}  "
        f"off: {', '.join(off) or 'none'}" + ("  HALTED" if s.halted else "")
    )


def run_demo(
    site_path: Path, speed: float, port: int, seconds: float | None, console: Console
) -> None:
    _stop_on_signals()
    site = load_site(site_path)
    console.print(
        f"[bold]gridpilot demo[/bold] — site [bold]{site.site.name}[/bold], "
        f"simulated clock at {speed:g}x, store {site.settings.store_url}"
    )
    runtime = open_runtime(site, speed=speed)
    server = BackgroundServer(http_app(runtime, "127.0.0.1", port), "127.0.0.1", port)
    fleet = None
    try:
        server.start()
        print_addresses(runtime, site_path, port, console)
        _wait_for_telemetry(runtime)
        if seeded := seed_history(runtime):
            console.print(
                f"the store was empty: wrote {HISTORY_DAYS} days of simulated history "
                f"({seeded} points) so the first forecast has days to go by"
            )
        console.print(status_line(runtime))
        made = plan.optimize(
            runtime, caller_named(site, "agent"), plan.OptimizeRequest(horizon_hours=24)
        )
        console.print(f"plan {made.plan_id} ({made.status}): {made.explanation}")
        fleet = start_daemons(site, f"http://127.0.0.1:{port}/mcp", console)
        _run(runtime, seconds, console)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
        runtime.close()
    console.print("stopped")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (docker stop, systemd) both shut down in order. A shell that
    starts the demo in the background hands it SIGINT ignored; take it back."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def print_addresses(rt: Runtime, site_path: Path, port: int, console: Console) -> None:
    site, url = rt.site, f"http://127.0.0.1:{port}"
    tokens = Table("principal", "role", "bearer token")
    for name, token in demo_tokens(site).items():
        tokens.add_row(name, site.principal(name).role, token)
    console.print(f"dashboard:    [bold]{url}/dashboard/[/bold]  (log in with demo-viewer-token)")
    console.print(f"MCP endpoint: [bold]{url}/mcp[/bold]  (streamable HTTP, bearer token)")
    console.print(f"MQTT broker:  [bold]{rt.field_side.broker_url}[/bold]  (embedded, no login)")
    console.print(tokens)
    console.print(
        f"try:  .venv/bin/gridpilot tool call grid_state --url {url}/mcp --token demo-viewer-token"
    )
    console.print(f"      .venv/bin/gridpilot state --broker {rt.field_side.broker_url}")
    snippet = {
        "mcpServers": {
            "gridpilot": {
                "command": str(Path(sys.executable).with_name("gridpilot")),
                "args": ["mcp", "stdio", "--site", str(site_path.resolve())],
            }
        }
    }
    console.print(
        "Claude Desktop (claude_desktop_config.json; it runs its own simulated site over stdio):"
    )
    console.print(json.dumps(snippet, indent=2), markup=False, highlight=False, soft_wrap=True)


def _run(rt: Runtime, seconds: float | None, console: Console) -> None:
    """Status lines every few seconds, and the scripted faults when their time comes."""
    started = time.monotonic()
    simulator = rt.field_side.simulator
    faults = scripted_faults(rt.site) if simulator is not None else []
    deadline = None if seconds is None else started + seconds
    next_status = time.monotonic() + STATUS_EVERY_S
    while deadline is None or time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, (deadline or 1e18) - time.monotonic())))
        while faults and time.monotonic() - started >= faults[0][0]:
            _, fault, what = faults.pop(0)
            simulator.inject(fault)
            console.print(f"[bold yellow]scripted fault[/bold yellow]: {fault.kind} — {what}")
        if time.monotonic() >= next_status:
            next_status += STATUS_EVERY_S
            console.print(status_line(rt))


def start_daemons(site: SiteConfig, url: str, console: Console) -> Fleet | None:
    """The three daemons, as MCP clients over HTTP with their own demo tokens."""
    from agents.cli import DAEMONS, make_daemon

    tokens = demo_tokens(site)
    members = [
        (make_daemon(name), Target(url=url, token=tokens[principal]))
        for name, (_m, _c, principal, _w) in DAEMONS.items()
        if principal in tokens
    ]
    if not members:
        return None
    fleet = Fleet(members)
    fleet.start()
    names = ", ".join(d.role for d, _t in members)
    console.print(f"daemons running: {names} (see .venv/bin/gridpilot audit tail)")
    return fleet


def _wait_for_telemetry(rt: Runtime, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(v is not None for v in rt.snapshot().soc_fraction.values()):
            return
        time.sleep(0.1)
