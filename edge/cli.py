"""`gridpilot sim ...`, `gridpilot gateway run` and `gridpilot state`."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console
from grid.errors import ConfigError

sim_app = typer.Typer(help="Run the simulated site and inject faults.", no_args_is_help=True)
gateway_app = typer.Typer(help="Run the MQTT gateway of a site.", no_args_is_help=True)

BrokerOption = Annotated[
    str | None,
    typer.Option("--broker", "-b", help="mqtt://host:port (default: the site's broker_url)."),
]
DurationOption = Annotated[
    float | None,
    typer.Option("--duration", help="Stop after this many wall seconds (default: Ctrl-C)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")
    app.add_typer(gateway_app, name="gateway")
    app.command("state")(state)


def _external_broker(site_broker: str, given: str | None) -> str:
    url = given or site_broker
    if url == "embedded":
        raise ConfigError(
            "settings.broker_url is 'embedded': that broker lives inside the process "
            "that started it (`gridpilot demo` or `gridpilot sim run`); pass "
            "--broker mqtt://host:port"
        )
    return url


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _run_until(duration_s: float | None, status: Any) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else min(0.2, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        err_console.print("stopping")
    finally:
        status()


@sim_app.command("run")
def sim_run(
    site_path: SiteOption = DEFAULT_SITE,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
    scenario: Annotated[Path | None, typer.Option(help="Scenario TOML with [[faults]].")] = None,
    broker: BrokerOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the site's weather and noise.")] = 0,
    interval_s: Annotated[int, typer.Option(help="Telemetry interval, simulated s.")] = 5,
    with_gateway: Annotated[bool, typer.Option(help="Also run the gateway here.")] = False,
    duration: DurationOption = None,
) -> None:
    """Run every device of the site as a twin on the broker, at `--speed` times real time."""
    from edge.mqtt import shown
    from edge.runtime import start_site
    from edge.sim import load_scenario
    from grid.config import load_site

    if speed <= 0:
        raise typer.BadParameter(f"{speed} must be above 0", param_hint="--speed")
    site = load_site(site_path)
    plan = load_scenario(scenario) if scenario else None
    runtime = start_site(
        site,
        broker_url=broker,
        speed=speed,
        seed=seed,
        scenario=plan,
        interval_s=interval_s,
        gateway=with_gateway,
    )
    console.print(
        f"simulating [bold]{site.site.name}[/bold] ({len(runtime.simulator.twins)} devices) "
        f"on {shown(runtime.broker_url)} at {speed:g}x; Ctrl-C stops"
    )

    def done() -> None:
        runtime.stop()
        console.print(f"stopped after {runtime.simulator.steps} steps")

    _run_until(duration, done)


@sim_app.command("fault")
def sim_fault(
    kind: Annotated[
        str,
        typer.Argument(
            help="pv_shading, voltage_spike, voltage_sag, "
            "battery_overtemp, inverter_trip, soc_bias, stuck_sensor, "
            "dropped_sensor, device_offline, false_data_injection, frequency_sag"
        ),
    ],
    device: Annotated[str, typer.Option("--device", "-d", help="Device id to break.")],
    for_s: Annotated[float | None, typer.Option("--for", help="Simulated seconds.")] = None,
    magnitude: Annotated[float | None, typer.Option(help="Kind-specific size.")] = None,
    quantity: Annotated[str | None, typer.Option(help="Reading to affect.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Clear instead of inject.")] = False,
    site_path: SiteOption = DEFAULT_SITE,
    broker: BrokerOption = None,
) -> None:
    """Tell a running simulator (`gridpilot sim run`) to inject or clear a fault."""
    from pydantic import ValidationError

    from edge.mqtt import shown
    from edge.sim import Fault, FaultControl
    from grid.config import format_validation_error, load_site

    site = load_site(site_path)
    url = _external_broker(site.settings.broker_url, broker)
    try:
        if clear:
            control = FaultControl(action="clear", kind=kind, device=device)  # type: ignore[arg-type]
        else:
            fault = Fault(
                kind=kind,
                device=device,
                for_s=for_s,
                magnitude=magnitude,  # type: ignore[arg-type]
                quantity=quantity,
            )
            fault.check(site)
            control = FaultControl(action="inject", fault=fault)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "fault")) from None
    publish_control(url, site.site.name, control.model_dump_json().encode())
    verb = "cleared" if clear else "injected"
    console.print(f"{verb} {kind} on {device} (sent to {shown(url)})")


def publish_control(url: str, site_name: str, payload: bytes) -> None:
    from edge.mqtt import connect, make_client, wait_for
    from edge.protocol import fault_topic

    connected = threading.Event()
    client = make_client(url, f"gridpilot-cli-{time.monotonic_ns()}")
    client.on_connect = lambda *_a: connected.set()
    connect(client, url)
    try:
        wait_for(connected, 5.0, "gridpilot sim fault", url, client)
        client.publish(fault_topic(site_name), payload, qos=1).wait_for_publish(5.0)
    finally:
        client.disconnect()
        client.loop_stop()


@gateway_app.command("run")
def gateway_run(
    site_path: SiteOption = DEFAULT_SITE,
    broker: BrokerOption = None,
    store_url: Annotated[str | None, typer.Option("--store", help="Store URL.")] = None,
    client_id: Annotated[str, typer.Option(help="MQTT client id.")] = "gridpilot-gateway",
    shared_group: Annotated[
        str | None, typer.Option(help="Share telemetry with other gateways in this group.")
    ] = None,
    duration: DurationOption = None,
) -> None:
    """Ingest the site's telemetry into the store and keep the devices' heartbeat."""
    from edge.gateway import Gateway
    from edge.mqtt import shown
    from grid.clock import RealClock
    from grid.config import load_site
    from grid.store import open_store

    site = load_site(site_path)
    url = _external_broker(site.settings.broker_url, broker)
    state_dir = site.settings.state_dir
    store = open_store(store_url or site.settings.store_url, spool_dir=state_dir / "spool")
    gateway = Gateway(
        site,
        store,
        RealClock(),
        url,
        client_id=client_id,
        shared_group=shared_group,
        journal_dir=state_dir / "journal",
    )
    # A service manager stops us with SIGTERM: flush and exit as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    gateway.start()
    console.print(
        f"gateway {client_id} for [bold]{site.site.name}[/bold] on {shown(url)}; Ctrl-C stops"
    )

    def done() -> None:
        gateway.stop()
        store.close()
        console.print_json(json.dumps(gateway.stats.as_dict()))

    _run_until(duration, done)


def state(
    site_path: SiteOption = DEFAULT_SITE,
    broker: BrokerOption = None,
    wait_s: Annotated[float, typer.Option("--wait", help="Seconds to listen.")] = 2.0,
) -> None:
    """Show each device's retained status and state (listens for `--wait` seconds)."""
    from rich.table import Table
    from rich.text import Text

    from edge.observe import read_state
    from grid.config import load_site

    site = load_site(site_path)
    url = _external_broker(site.settings.broker_url, broker)
    states = read_state(site, url, wait_s)
    table = Table(title=site.site.name)
    for column in ("device", "kind", "online", "last seen", "state"):
        # Fold rather than cut: the state is what the user came to read.
        table.add_column(column, overflow="fold")
    for device in states.values():
        table.add_row(
            device.device,
            device.kind,
            "[green]online[/green]" if device.online else "[red]offline[/red]",
            device.last_seen.isoformat(timespec="seconds") if device.last_seen else "-",
            Text(json.dumps(device.state, separators=(",", ":"))),  # JSON, not markup
        )
    console.print(table)
