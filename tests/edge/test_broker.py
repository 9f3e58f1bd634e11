"""The same flow on the embedded amqtt broker that `gridpilot demo` uses."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.broker import EmbeddedBroker
from edge.protocol import Command
from edge.runtime import start_site
from grid.clock import SimClock
from grid.store.sqlite import SQLiteStore
from tests.edge.conftest import NOON
from tests.services.process import wait_until


def test_site_runs_on_the_embedded_broker(site, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "embedded.db")
    clock = SimClock(start=NOON, speed=120.0)
    runtime = start_site(site, broker_url="embedded", store=store, clock=clock, interval_s=5)
    try:
        assert runtime.broker_url.startswith("mqtt://127.0.0.1:")
        gateway = runtime.gateway

        def stored(asset: str, quantity: str) -> int:
            gateway.flush()
            end = clock.now() + timedelta(minutes=1)
            return len(store.query(site.site.name, asset, quantity, NOON, end))

        wait_until(lambda: stored("grid", "power_kw") >= 3, 20, "telemetry stored")
        wait_until(lambda: gateway.state.device("relay-board-1").online, 10, "board online")
        now = clock.now()
        ack = gateway.send_command(
            Command(
                id="emb-1",
                device="relay-board-1",
                action="set_relay",
                params={"channel": 4, "on": True},
                issued_at=now,
                expires_at=now + timedelta(minutes=5),
            ),
            10,
        )
        assert ack.result == "ok" and ack.state["relays"][3] is True
        wait_until(lambda: gateway.state.device("relay-board-1").state["relays"][3], 5, "state")
        assert gateway.stats.malformed == 0
    finally:
        runtime.stop()
        store.close()
    assert runtime.broker is not None and runtime.broker._loop is None


async def test_embedded_broker_as_async_context_manager() -> None:
    async with EmbeddedBroker() as broker:
        got: list[bytes] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_message = lambda _c, _u, msg: got.append(msg.payload)
        client.on_connect = lambda c, *_a: c.subscribe("t/#", qos=1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        await asyncio.sleep(0.3)
        client.publish("t/x", b"hello", qos=1)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        client.loop_stop()
        client.disconnect()
    assert got == [b"hello"]
