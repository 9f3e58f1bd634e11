"""Reading a site's retained device status and state from the broker, for a quick look
(`gridpilot state`) without running a gateway."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from edge.mqtt import connect, make_client, wait_for
from edge.protocol import ProtocolError, StatePayload, Status, decode, parse_topic
from edge.state import DeviceState
from grid.config import SiteConfig


def read_state(site: SiteConfig, broker_url: str, wait_s: float = 2.0) -> dict[str, DeviceState]:
    """Each configured device's state as retained on the broker after `wait_s` seconds."""
    states = {d.id: DeviceState(device=d.id, kind=d.kind) for d in site.devices}
    lock = threading.Lock()
    subscribed = threading.Event()
    name = site.site.name

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parts = parse_topic(msg.topic)
            entry = states.get(parts.device)
            if entry is None or not msg.payload:
                return
            with lock:
                if parts.kind == "status":
                    entry.online = decode(Status, msg.payload).online
                elif parts.kind == "state":
                    payload = decode(StatePayload, msg.payload)
                    entry.state = payload.state
                    entry.last_seen = payload.time
        except ProtocolError:
            return  # a stray message on the site's topics says nothing about state

    client = make_client(broker_url, f"gridpilot-state-{time.monotonic_ns()}")
    client.on_connect = lambda c, *_a: c.subscribe(
        [(f"gridpilot/{name}/+/status", 1), (f"gridpilot/{name}/+/state", 1)]
    )
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    connect(client, broker_url)
    try:
        wait_for(subscribed, 5.0, "gridpilot state", broker_url, client)
        time.sleep(max(0.0, wait_s))
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return {d: s.model_copy(deep=True) for d, s in states.items()}
