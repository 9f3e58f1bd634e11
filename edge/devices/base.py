"""What every device twin shares: its MQTT session and the command envelope.

A twin is a device's physics (in its own module) plus this session: last will and
retained status, retained state, telemetry with a sequence number, and commands
checked for version, device and expiry and made idempotent by id, exactly as the
firmware does it (the checks are the firmware's own functions).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt

from edge.firmware import logic
from edge.mqtt import connect, make_client, wait_for
from edge.protocol import Command, ProtocolError, decode, topic
from grid.clock import Clock
from grid.config import Device

log = logging.getLogger(__name__)


class Twin:
    """Base of the twins. Subclasses implement `values`, `state` and `execute`."""

    kind: str = ""

    def __init__(self, site: str, device: Device, clock: Clock) -> None:
        self.site = site
        self.device = device
        self.id = device.id
        self.clock = clock
        # Held while physics steps and while a command runs: both change the state.
        self.lock = threading.RLock()
        self.executed = logic.Executed(size=256)
        self.seq = 0
        self.online = False
        self.commands_executed = 0
        self._client: mqtt.Client | None = None
        self._subscribed = threading.Event()

    # -- device behaviour (subclasses) -----------------------------------------------

    def values(self) -> dict[str, float]:
        """The readings the device measures now (true values, before any fault)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """The settable state, as retained on the state topic and returned in acks."""
        raise NotImplementedError

    def execute(self, command: Command) -> tuple[str, str]:
        """Carry out a checked command: (result, detail)."""
        return "rejected", f"a {self.kind} does not take commands"

    def step(self, dt_s: float, now_s: float) -> None:
        """Advance the physics by `dt_s` seconds (environment set by the simulator)."""

    # -- MQTT session --------------------------------------------------------------------

    def topic(self, kind: str) -> str:
        return topic(self.site, self.id, kind)

    def connect(self, broker_url: str, timeout_s: float = 10.0) -> None:
        will = (self.topic("status"), json.dumps(logic.status(self.id, False)).encode())
        client = make_client(broker_url, self.device.client_id, will=will)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_a: self._subscribed.set()
        client.on_message = self._on_message
        self._client = client
        connect(client, broker_url)
        wait_for(self._subscribed, timeout_s, f"device {self.id}", broker_url, client)

    def close(self) -> None:
        if self._client is not None:
            self.set_online(False)
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe([(f, 1) for f in self.subscriptions()])
        self.online = True
        self._publish(self.topic("status"), logic.status(self.id, True, self.clock.time()), 1, True)
        self.publish_state()

    def subscriptions(self) -> list[str]:
        return [self.topic("cmd")]

    def set_online(self, online: bool) -> None:
        """Announce online/offline; offline also stops telemetry and commands, like a
        device that lost power (the simulator's `device_offline` fault)."""
        self.online = online
        self._publish(
            self.topic("status"), logic.status(self.id, online, self.clock.time()), 1, True
        )
        if online:
            self.publish_state()

    def publish_state(self) -> None:
        with self.lock:
            payload = logic.state_payload(self.id, self.kind, self.clock.time(), self.state())
        self._publish(self.topic("state"), payload, 1, True)

    def publish_telemetry(self, values: dict[str, float], now_s: float, qos: int = 0) -> None:
        if not self.online:
            return
        payload = logic.telemetry(self.id, self.seq, now_s, values)
        self.seq += 1
        self._publish(self.topic("telemetry"), payload, qos, False)

    def _publish(self, name: str, payload: dict[str, Any], qos: int, retain: bool) -> None:
        if self._client is not None:
            self._client.publish(name, json.dumps(payload), qos=qos, retain=retain)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.on_message(msg.topic, msg.payload)
        except Exception:  # a twin, like the firmware, must survive any message
            log.exception("twin %s: error handling %s", self.id, msg.topic)

    def on_message(self, name: str, payload: bytes) -> None:
        if name == self.topic("cmd") and self.online:
            self.on_command(payload)

    def on_command(self, payload: bytes) -> None:
        now_s = self.clock.time()
        try:
            raw = json.loads(payload)
        except ValueError:
            log.warning("twin %s: command is not JSON", self.id)
            return
        ack = self.handle_command(raw, now_s)
        if ack is not None:
            self._publish(self.topic("ack"), ack, 1, False)
            self.publish_state()

    def handle_command(self, raw: Any, now_s: float) -> dict[str, Any] | None:
        """The ack payload for a received command (a repeated id gets its old ack)."""
        command_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(command_id, str) and (seen := self.executed.get(command_id)) is not None:
            return seen
        result, detail = logic.check_command(raw, self.id, now_s)
        with self.lock:
            if result == "ok":
                try:
                    result, detail = self.execute(decode(Command, json.dumps(raw)))
                except ProtocolError as exc:
                    result, detail = "rejected", str(exc)
            if result == "ok":
                self.commands_executed += 1
            ack = logic.ack(command_id or "?", self.id, result, detail, self.state(), now_s)
        if isinstance(command_id, str) and command_id:
            self.executed.put(command_id, ack)
        return ack


def param(command: Command, name: str, kind: type) -> Any:
    """A command parameter of the right type, or ValueError naming it."""
    value = command.params.get(name)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ValueError(f"params.{name} = {value!r} must be a {kind.__name__}")
