"""Guardrail overhead: a command through the Actuator (authorize, every policy rule,
pending record, send, ack, audit) beside the same command sent raw, in one run.

Rows, each a round trip from request to the device's ack through a real mosquitto:
- raw paho: publish the command and wait for the ack topic (the floor);
- gateway: `Gateway.send_command` (the field side's own overhead);
- actuator: `Actuator.request` as an agent, with the anomaly interlock asked too.

Run as `python -m bench.actuation` (or `make bench`).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from app.runtime import open_runtime
from bench._report import p50_p95, report
from edge.mqtt import connect, make_client
from edge.protocol import Command, encode, topic
from grid.clock import SimClock
from grid.config import load_site
from guardrails.policy import Action
from guardrails.principals import caller_named
from tests.services.mosquitto import MosquittoServer

N = 300
EXAMPLE = Path(__file__).parents[1] / "examples" / "site.toml"


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    p50, p95 = p50_p95(samples_s)
    return p50 * 1000, p95 * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = MosquittoServer(root)
        broker.start()
        site = load_site(EXAMPLE)
        site = site.model_copy(
            update={
                "settings": site.settings.model_copy(
                    update={
                        "store_url": f"sqlite:///{root / 'bench.db'}",
                        "state_dir": root / "state",
                        "broker_url": broker.url,
                    }
                ),
                # the bench sends far more than a real agent may: lift the per-minute cap only
                "policy": site.policy.model_copy(
                    update={"actions_per_minute_per_principal": 10**6}
                ),
            }
        )
        rt = open_runtime(site, clock=SimClock(speed=1.0), simulate=True)
        try:
            time.sleep(6)  # one telemetry round, so the stale-data interlock passes
            rows = measure(rt, broker.url)
        finally:
            rt.close()
            broker.stop()
    floor = rows["raw paho publish + ack"][0]
    report(
        "actuation",
        f"Actuation round trip, request to ack (ms, {N} commands each)",
        ["path", "p50 ms", "p95 ms", "p50 / raw"],
        [
            [name, f"{p50:.2f}", f"{p95:.2f}", f"{p50 / floor:.1f}x"]
            for name, (p50, p95) in rows.items()
        ],
        [
            "Battery setpoints alternating ±1 kW on the example site, simulator on mosquitto "
            "(loopback), SQLite store and audit log with synchronous=FULL. The actuator row "
            "includes every policy rule, the anomaly interlock, the pending record and the audit "
            "record (two fsyncs)."
        ],
    )


def measure(rt, broker_url: str) -> dict[str, tuple[float, float]]:
    site = rt.site
    battery = site.assets.batteries[0]
    name = site.site.name
    clock = rt.clock

    def command(i: int) -> Command:
        now = clock.now()
        return Command(
            id=f"bench-{uuid.uuid4().hex[:12]}",
            device=battery.device,
            action="set_power",
            params={"power_kw": 1.0 if i % 2 else -1.0},
            issued_at=now,
            expires_at=now + timedelta(seconds=30),
        )

    # raw paho: one client publishes and listens for the ack itself
    acked: dict[str, threading.Event] = {}
    # the field side's own client settings (TCP_NODELAY among them), no gateway logic
    raw = make_client(broker_url, "bench-raw")

    def on_message(_c, _u, msg) -> None:
        event = acked.get(json.loads(msg.payload)["id"])
        if event is not None:
            event.set()

    raw.on_message = on_message
    ack_topic = topic(name, battery.device, "ack")
    raw.on_connect = lambda client, *_: client.subscribe(ack_topic, qos=1)
    connect(raw, broker_url)
    time.sleep(0.5)
    raw_times = []
    for i in range(N):
        cmd = command(i)
        acked[cmd.id] = event = threading.Event()
        start = time.perf_counter()
        raw.publish(topic(name, battery.device, "cmd"), encode(cmd), qos=1)
        if not event.wait(5):
            raise RuntimeError("raw command not acknowledged")
        raw_times.append(time.perf_counter() - start)
    raw.loop_stop()
    raw.disconnect()

    gateway = rt.field_side.gateway
    gateway_times = []
    for i in range(N):
        cmd = command(i)
        start = time.perf_counter()
        gateway.send_command(cmd, 5.0)
        gateway_times.append(time.perf_counter() - start)

    # When the Actuator hands a command to the gateway: the guardrails' own share.
    handed: list[float] = []
    send = gateway.send_command

    def timed_send(command: Command, timeout_s: float):
        handed.append(time.perf_counter())
        return send(command, timeout_s)

    gateway.send_command = timed_send  # type: ignore[method-assign]
    agent = caller_named(site, "arbitrage")
    actuator_times, before_publish = [], []
    for i in range(N):
        action = Action(kind="set_battery_power", asset=battery.id, power_kw=1.0 if i % 2 else -1.0)
        start = time.perf_counter()
        result = rt.actuator.request(agent, "set_setpoint", [action])
        actuator_times.append(time.perf_counter() - start)
        before_publish.append(handed[-1] - start)
        if result.outcome != "executed":
            raise RuntimeError(f"actuator request not executed: {result}")
    return {
        "raw paho publish + ack": percentiles(raw_times),
        "Gateway.send_command": percentiles(gateway_times),
        "Actuator.request (guardrails + audit)": percentiles(actuator_times),
        "  of which request -> publish (rules, pending record)": percentiles(before_publish),
    }


if __name__ == "__main__":
    main()
