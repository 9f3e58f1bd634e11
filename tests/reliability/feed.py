"""Publishing hand-made messages into a rig's broker, as a device (or a forger) would."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from edge.protocol import topic
from tests.edge.conftest import Rig
from tests.services.process import wait_until


class Feed:
    """A raw MQTT client; `send` returns once the gateway has taken the message in."""

    def __init__(self, rig: Rig, port: int) -> None:
        self.rig = rig
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def raw(self, name: str, payload: bytes) -> None:
        before = self.rig.gateway.stats.received
        self.client.publish(name, payload, qos=1).wait_for_publish(5)
        wait_until(lambda: self.rig.gateway.stats.received > before, 10, "gateway took it")

    def telemetry(self, device: str, seq: Any, when: datetime | str, **values: Any) -> None:
        stamp = when if isinstance(when, str) else when.isoformat()
        body = {"v": 1, "device": device, "seq": seq, "time": stamp, "values": values}
        self.raw(topic(self.rig.name, device, "telemetry"), json.dumps(body).encode())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
