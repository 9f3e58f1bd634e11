"""The gateway: the one owner of the site's MQTT traffic.

It subscribes to every device of a site, validates each payload, writes telemetry
to the store in batches (by size and by time), keeps the live state cache, notices
sequence gaps, duplicates and devices going offline, publishes the heartbeat that
keeps relay boards out of their safe state, and is the only code that publishes
commands. A malformed message is counted and dropped with a log line; nothing a
device sends can stop it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from edge.mapping import site_map
from edge.mqtt import connect, make_client, shown, wait_clock, wait_for
from edge.protocol import (
    GATEWAY,
    Ack,
    Command,
    Heartbeat,
    ProtocolError,
    StatePayload,
    Status,
    Telemetry,
    decode,
    encode,
    heartbeat_topic,
    parse_topic,
    topic,
)
from edge.state import LiveState
from grid.clock import Clock
from grid.config import SiteConfig
from grid.errors import DeviceUnavailable
from grid.store import Store
from grid.telemetry import Event, Measurement, Severity

log = logging.getLogger(__name__)

# Log the first few malformed messages in full; after that one line per hundred,
# so a device spraying garbage cannot flood the log either.
_LOG_FIRST_MALFORMED = 10


@dataclass
class GatewayStats:
    received: int = 0
    stored: int = 0  # measurements written to the store
    malformed: int = 0
    seq_gaps: int = 0  # times a device's sequence jumped
    missing: int = 0  # telemetry messages those jumps skipped
    duplicates: int = 0
    offline_events: int = 0
    acks: int = 0
    store_errors: int = 0
    connects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.ack: Ack | None = None


class Gateway:
    def __init__(
        self,
        site: SiteConfig,
        store: Store,
        clock: Clock,
        broker_url: str,
        *,
        client_id: str = "gridpilot-gateway",
        shared_group: str | None = None,
        flush_points: int = 500,
        flush_s: float = 1.0,
        heartbeat_s: float = 5.0,
        offline_after_s: float = 60.0,
        persistent_session: bool = True,
    ) -> None:
        self.site = site
        self.store = store
        self.clock = clock
        self.broker_url = broker_url
        self.client_id = client_id
        self.shared_group = shared_group
        self.flush_points = flush_points
        self.flush_s = flush_s
        self.heartbeat_s = heartbeat_s
        self.offline_after_s = offline_after_s
        self._map = site_map(site)
        self._name = site.site.name
        self.state = LiveState(self._map.kinds)
        self.stats = GatewayStats()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._points: list[Measurement] = []
        self._events: list[Event] = []
        self._last_seq: dict[str, int] = {}
        self._heard_s: dict[str, float] = {}  # clock time each device was last heard
        self._waiting: dict[str, list[_Waiter]] = {}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._v5 = shared_group is not None
        self._persistent = persistent_session
        self._client = make_client(
            broker_url, client_id, v5=self._v5, persistent=persistent_session
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- life cycle --------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, subscribe, start heartbeats; returns once subscribed."""
        connect(self._client, self.broker_url, v5=self._v5, persistent=self._persistent)
        wait_for(
            self._subscribed, timeout_s, f"gateway {self.client_id}", self.broker_url, self._client
        )
        for target, name in ((self._heartbeats, "heartbeat"), (self._writer, "writer")):
            thread = threading.Thread(target=target, name=f"{self.client_id}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop heartbeats, disconnect, then write what is still buffered."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()
        self.flush()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def last_seq(self, device: str) -> int | None:
        """The newest telemetry sequence number accepted from a device."""
        with self._lock:
            return self._last_seq.get(device)

    def flush(self) -> None:
        """Write buffered measurements and events now."""
        with self._flush_lock:
            with self._lock:
                points, self._points = self._points, []
                events, self._events = self._events, []
            try:
                if points:
                    self.store.write(points)
                if events:
                    self.store.write_events(events)
            except Exception:  # the store's own problem; ingest must go on
                log.exception("store write of %d points failed", len(points))
                with self._lock:
                    self.stats.store_errors += 1
                return
            with self._lock:
                self.stats.stored += len(points)

    # -- commands ----------------------------------------------------------------

    def send_command(self, command: Command, timeout_s: float) -> Ack:
        """Publish a command (QoS 1) and wait up to `timeout_s` wall seconds for its ack.

        Raises DeviceUnavailable when the device is offline or silent. A command
        that times out may still arrive later; its `expires_at` is what stops a
        stale one from acting."""
        device = self.state.device(command.device)
        if device is None:
            raise DeviceUnavailable(f"device {command.device!r} is not in site {self._name}")
        if not device.online:
            raise DeviceUnavailable(f"device {command.device!r} is offline")
        if not self.connected:
            raise DeviceUnavailable(f"gateway is not connected to the broker {self.broker_url}")
        waiter = _Waiter()
        with self._lock:
            self._waiting.setdefault(command.id, []).append(waiter)
        try:
            self._client.publish(topic(self._name, command.device, "cmd"), encode(command), qos=1)
            if not waiter.done.wait(timeout_s) or waiter.ack is None:
                raise DeviceUnavailable(
                    f"device {command.device!r} did not acknowledge command {command.id!r} "
                    f"({command.action}) within {timeout_s:g} s"
                )
            return waiter.ack
        finally:
            with self._lock:
                waiters = self._waiting.get(command.id, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    self._waiting.pop(command.id, None)

    # -- MQTT callbacks (paho's network thread) ----------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("gateway %s: broker refused the connection: %s", self.client_id, reason)
            return
        with self._lock:
            self.stats.connects += 1
        self._connected.set()
        # Subscribe on every connect: a broker that lost our session (restart without
        # persistence) forgets subscriptions, and subscribing again is harmless.
        site = self._name
        telemetry = f"gridpilot/{site}/+/telemetry"
        if self.shared_group:
            # Only telemetry is split between gateways; every gateway hears all state,
            # status and acks, so each keeps a whole live state and gets its own acks.
            telemetry = f"$share/{self.shared_group}/{telemetry}"
        filters = [telemetry] + [f"gridpilot/{site}/+/{k}" for k in ("state", "status", "ack")]
        client.subscribe([(f, 1) for f in filters])
        log.info("gateway %s connected to %s", self.client_id, shown(self.broker_url))

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("gateway %s lost the broker; reconnecting", self.client_id)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.stats.received += 1
        try:
            self._handle(msg.topic, msg.payload)
        except ProtocolError as exc:
            self._malformed(msg.topic, str(exc))
        except Exception as exc:  # never let one message take the gateway down
            log.exception("gateway: unexpected error on %s", msg.topic)
            self._malformed(msg.topic, f"internal error: {exc!r}")

    def _malformed(self, where: str, why: str) -> None:
        with self._lock:
            self.stats.malformed += 1
            count = self.stats.malformed
        if count <= _LOG_FIRST_MALFORMED or count % 100 == 0:
            log.warning("dropped malformed message #%d on %s: %s", count, where, why)

    def _handle(self, name: str, payload: bytes) -> None:
        parts = parse_topic(name)
        if parts.device == GATEWAY:
            return
        if parts.device not in self._map.kinds:
            raise ProtocolError(f"device {parts.device!r} is not in site {self._name}")
        if parts.kind == "telemetry":
            self._on_telemetry(parts.device, decode(Telemetry, payload))
        elif parts.kind == "state":
            state = decode(StatePayload, payload)
            self._same_device(parts.device, state.device)
            self.state.set_state(parts.device, state.state, state.time)
        elif parts.kind == "status":
            if payload:  # an empty retained message only clears the topic
                status = decode(Status, payload)
                self._same_device(parts.device, status.device)
                self._on_status(parts.device, status.online)
        elif parts.kind == "ack":
            self._on_ack(parts.device, decode(Ack, payload))

    @staticmethod
    def _same_device(topic_device: str, payload_device: str) -> None:
        if topic_device != payload_device:
            raise ProtocolError(
                f"payload names device {payload_device!r} but came on {topic_device!r}'s topic"
            )

    def _on_telemetry(self, device: str, telemetry: Telemetry) -> None:
        self._same_device(device, telemetry.device)
        if not self._sequence_ok(device, telemetry.seq, telemetry.time):
            return
        points = self._map.measurements(device, telemetry.values, telemetry.time)
        came_back = self.state.seen(device, telemetry.time, points)
        with self._wake:
            self._heard_s[device] = self.clock.time()
            self._points.extend(points)
            if came_back:
                self._events.append(self._event("online", device, "telemetry resumed"))
            if len(self._points) >= self.flush_points:
                self._wake.notify()

    def _sequence_ok(self, device: str, seq: int, when: datetime) -> bool:
        # With a shared subscription each gateway sees only some of a device's
        # messages, so its sequence has holes by design: skip the bookkeeping.
        if self.shared_group:
            return True
        with self._lock:
            last = self._last_seq.get(device)
            if last is not None and seq <= last and seq != 0:
                self.stats.duplicates += 1
                return False
            self._last_seq[device] = seq
            if last is not None and seq > last + 1:
                skipped = seq - last - 1
                self.stats.seq_gaps += 1
                self.stats.missing += skipped
                self._events.append(
                    self._event(
                        "seq_gap",
                        device,
                        f"{skipped} telemetry message(s) missing after seq {last}",
                        Severity.WARNING,
                        {"after": last, "next": seq, "missing": skipped},
                        when,
                    )
                )
        return True

    def _on_status(self, device: str, online: bool) -> None:
        if not self.state.set_online(device, online) or online:
            return
        with self._lock:
            self.stats.offline_events += 1
            self._events.append(
                self._event("offline", device, "device reported offline", Severity.WARNING)
            )
        log.warning("device %s went offline", device)

    def _on_ack(self, device: str, ack: Ack) -> None:
        self._same_device(device, ack.device)
        self.state.set_state(device, ack.state, ack.time)
        with self._lock:
            self.stats.acks += 1
            waiters = list(self._waiting.get(ack.id, []))
            self._events.append(
                self._event(
                    "ack",
                    device,
                    f"{ack.result}: {ack.detail}",
                    data={"id": ack.id},
                    when=ack.time,
                )
            )
        for waiter in waiters:
            waiter.ack = ack
            waiter.done.set()

    def _event(
        self,
        kind: str,
        device: str,
        message: str,
        severity: Severity = Severity.INFO,
        data: dict[str, Any] | None = None,
        when: datetime | None = None,
    ) -> Event:
        return Event(
            site=self._name,
            kind=kind,
            time=when or self.clock.now(),
            asset=device,
            severity=severity,
            message=message,
            data=data or {},
        )

    # -- background threads ------------------------------------------------------

    def _heartbeats(self) -> None:
        seq = 0
        while not self._stop.is_set():
            beat = Heartbeat(gateway=self.client_id, seq=seq, time=self.clock.now())
            self._client.publish(heartbeat_topic(self._name), encode(beat), qos=0)
            seq += 1
            self._check_silent()
            if not wait_clock(self.clock, self.heartbeat_s, self._stop):
                return

    def _check_silent(self) -> None:
        """A device that died without its last will reaching us still goes offline."""
        now = self.clock.time()
        with self._lock:
            silent = [d for d, t in self._heard_s.items() if now - t > self.offline_after_s]
            for device in silent:
                del self._heard_s[device]
        for device in silent:
            if self.state.set_online(device, False):
                with self._lock:
                    self.stats.offline_events += 1
                    self._events.append(
                        self._event(
                            "offline",
                            device,
                            f"no telemetry for more than {self.offline_after_s:g} s",
                            Severity.WARNING,
                        )
                    )

    def _writer(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                # Wakes early when a batch fills up (or on stop); otherwise every flush_s.
                self._wake.wait_for(
                    lambda: self._stop.is_set() or len(self._points) >= self.flush_points,
                    timeout=self.flush_s,
                )
            self.flush()
