"""The gateway: the one owner of the site's MQTT traffic.

It subscribes to every device of a site, validates each payload, writes telemetry
to the store in batches (by size and by time), keeps the live state cache, notices
sequence gaps, duplicates and devices going offline, publishes the heartbeat that
keeps relay boards out of their safe state, and is the only code that publishes
commands. A message that breaks the protocol or the site's ingest limits is
counted by reason and dropped with a log line; nothing a device sends can stop it.
Parsing runs on a thread of its own, so paho's network thread only reads sockets.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.journal import Journal
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
# How long the parse thread lets messages queue up once it has emptied the queue;
# telemetry waits for a batch anyway, and a command's ack is late by at most this.
_GATHER_S = 0.001


@dataclass
class GatewayStats:
    received: int = 0
    stored: int = 0  # measurements written to the store (or its spool)
    malformed: int = 0  # messages refused as bad input, all reasons together
    rejected: dict[str, int] = field(default_factory=dict)  # the same, by reason
    internal_errors: int = 0  # the gateway's own faults, never counted as bad input
    seq_gaps: int = 0  # times a device's sequence jumped
    missing: int = 0  # telemetry messages those jumps skipped
    duplicates: int = 0
    resyncs: int = 0  # sequences restarted after two consecutive new numbers
    offline_events: int = 0
    acks: int = 0
    store_errors: int = 0
    connects: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.ack: Ack | None = None


@dataclass
class _Cut:
    """A mark in the parse queue: everything before it belongs to this batch."""

    segment: int | None
    done: threading.Event = field(default_factory=threading.Event)
    points: list[Measurement] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class _Held:
    """A message whose sequence number is far from the last one, kept until the
    device's next message confirms (or refutes) it."""

    seq: int
    points: list[Measurement]
    time: datetime


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
        journal_dir: Path | None = None,
    ) -> None:
        """`journal_dir`: where received telemetry is journaled until stored, so a
        killed gateway loses none of it (see `edge.journal`); None keeps no journal."""
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
        self._limits = site.ingest
        self._ranges: dict[str, tuple[float, float]] = {}
        self._name = site.site.name
        self.state = LiveState(self._map.kinds)
        self.stats = GatewayStats()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._points: list[Measurement] = []
        self._events: list[Event] = []
        self._last_seq: dict[str, int] = {}
        self._held: dict[str, _Held] = {}
        self._series: dict[str, set[str]] = {}  # device -> reading names heard
        self._sent: dict[str, tuple[str, datetime]] = {}  # command id -> (device, expiry)
        self._queue: queue.SimpleQueue[tuple[str, bytes] | _Cut | None] = queue.SimpleQueue()
        self._parser: threading.Thread | None = None
        self._journal_lock = threading.Lock()
        self._journal = Journal(journal_dir, client_id) if journal_dir is not None else None
        self._unwritten: list[_Cut] = []  # batches the store has not taken yet, oldest first
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
        """Replay a journal left by a killed run, connect, subscribe, start heartbeats;
        returns once subscribed."""
        self._replay_journal()
        self._parser = threading.Thread(target=self._parse, name=f"{self.client_id}-parse")
        self._parser.daemon = True
        self._parser.start()
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
        if self._parser is not None:
            self._queue.put(None)
            self._parser.join(timeout=10)
            self._parser = None
        if self._journal is not None:
            self._journal.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def last_seq(self, device: str) -> int | None:
        """The newest telemetry sequence number accepted from a device."""
        with self._lock:
            return self._last_seq.get(device)

    def flush(self) -> None:
        """Write every message received so far to the store now.

        A batch the store refuses is kept, in order, and tried again at the next
        flush; its journal segment stays on disk until then."""
        with self._flush_lock:
            cut = self._cut()
            if cut.points or cut.events or not self._unwritten:
                self._unwritten.append(cut)
            else:  # nothing new: the last kept batch now also covers this segment
                self._unwritten[-1].segment = cut.segment
            while self._unwritten:
                batch = self._unwritten[0]
                try:
                    if batch.points:
                        self.store.write(batch.points)
                    if batch.events:
                        self.store.write_events(batch.events)
                except Exception:  # the store's own problem; ingest must go on
                    log.exception(
                        "store write of %d points failed; kept for the next flush",
                        len(batch.points),
                    )
                    with self._lock:
                        self.stats.store_errors += 1
                    return
                self._unwritten.pop(0)
                with self._lock:
                    self.stats.stored += len(batch.points)
                if self._journal is not None and batch.segment is not None:
                    self._journal.done(batch.segment)

    def pending_points(self) -> int:
        """Points received but not yet taken by the store."""
        with self._flush_lock:
            return sum(len(b.points) for b in self._unwritten)

    def _cut(self) -> _Cut:
        """Close the current batch: everything received before now goes into it."""
        with self._journal_lock:
            segment = self._journal.rotate() if self._journal is not None else None
            cut = _Cut(segment)
            self._queue.put(cut)
        parser = self._parser
        if parser is not None and parser.is_alive():
            cut.done.wait()
        else:  # not started yet, or stopped: parse what is queued here
            while not cut.done.is_set():
                self._take(self._queue.get())
        return cut

    def _replay_journal(self) -> None:
        if self._journal is None or not self._journal.leftovers:
            return
        last = self._journal.leftovers[-1]
        count = 0
        for segment in self._journal.leftovers:
            for name, payload in self._journal.read(segment):
                self._process(name, payload)
                count += 1
        log.warning("gateway %s: replayed %d journaled message(s)", self.client_id, count)
        with self._lock:
            points, self._points = self._points, []
            events, self._events = self._events, []
        self._unwritten.append(_Cut(last, points=points, events=events))
        with self._journal_lock:
            self._journal.rotate()  # new messages go after the replayed ones
        self.flush()

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
            # A late ack still counts until the command expires; then it is unknown.
            now = self.clock.now()
            for old in [i for i, (_, exp) in self._sent.items() if exp < now]:
                del self._sent[old]
            self._sent[command.id] = (command.device, command.expires_at + timedelta(seconds=60))
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
        name, payload = msg.topic, msg.payload
        if self._journal is not None and name.endswith("/telemetry"):
            # Journaled before paho acknowledges the message to the broker.
            with self._journal_lock:
                if len(payload) <= self._limits.max_message_bytes:
                    self._journal.append(name, payload)
                self._queue.put((name, payload))
        else:
            self._queue.put((name, payload))

    # -- parsing (the parse thread) ----------------------------------------------

    def _parse(self) -> None:
        while True:
            item = self._queue.get()
            while item is not None:
                self._take(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if item is None:
                return
            # Let the next messages gather: one wake-up per burst instead of one per
            # message, which at thousands a second cost more CPU (thread switches and
            # GIL hand-offs with paho's thread) than parsing them did.
            time.sleep(_GATHER_S)

    def _take(self, item: tuple[str, bytes] | _Cut | None) -> None:
        if isinstance(item, _Cut):
            with self._lock:
                item.points, self._points = self._points, []
                item.events, self._events = self._events, []
            item.done.set()
        elif item is not None:
            self._process(*item)

    def _process(self, name: str, payload: bytes) -> None:
        with self._lock:
            self.stats.received += 1
        try:
            if len(payload) > self._limits.max_message_bytes:
                raise ProtocolError(
                    f"{len(payload)} bytes; limit {self._limits.max_message_bytes} bytes",
                    "too_large",
                )
            self._handle(name, payload)
        except ProtocolError as exc:
            self._reject(name, str(exc), exc.reason)
        except Exception:  # never let one message take the gateway down
            with self._lock:
                self.stats.internal_errors += 1
                count = self.stats.internal_errors
            if count <= _LOG_FIRST_MALFORMED or count % 100 == 0:
                log.exception("gateway: internal error #%d handling %s", count, name)

    def _reject(self, where: str, why: str, reason: str) -> None:
        with self._lock:
            self.stats.malformed += 1
            self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
            count = self.stats.malformed
        if count <= _LOG_FIRST_MALFORMED or count % 100 == 0:
            log.warning("dropped message #%d on %s (%s): %s", count, where, reason, why)

    def _handle(self, name: str, payload: bytes) -> None:
        parts = parse_topic(name)
        if parts.device == GATEWAY:
            return
        if parts.site != self._name:
            raise ProtocolError(f"topic {name!r} is not site {self._name}'s", "bad_topic")
        if parts.device not in self._map.kinds:
            raise ProtocolError(
                f"device {parts.device!r} is not in site {self._name}", "unknown_device"
            )
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
                f"payload names device {payload_device!r} but came on {topic_device!r}'s topic",
                "wrong_device",
            )

    def _on_telemetry(self, device: str, telemetry: Telemetry) -> None:
        self._same_device(device, telemetry.device)
        now_s = self.clock.time()
        self._check_time(telemetry.time, now_s)
        points = self._plausible(device, telemetry)
        for when, accepted in self._sequence(device, telemetry.seq, telemetry.time, points):
            came_back = self.state.seen(device, when, accepted)
            with self._wake:
                self._heard_s[device] = now_s
                self._points.extend(accepted)
                if came_back:
                    self._events.append(self._event("online", device, "telemetry resumed"))
                if len(self._points) >= self.flush_points:
                    self._wake.notify()

    def _check_time(self, when: datetime, now_s: float) -> None:
        # A reading from the future would stay the "latest" one and hide staleness;
        # one from long ago is a device whose clock was never set.
        ahead_s = when.timestamp() - now_s
        if ahead_s > self._limits.max_future_s:
            raise ProtocolError(
                f"time {when.isoformat()} is {ahead_s:.0f} s ahead of the gateway's clock; "
                f"limit {self._limits.max_future_s:g} s (ingest.max_future_s)",
                "clock_skew",
            )
        if -ahead_s > self._limits.max_past_s:
            raise ProtocolError(
                f"time {when.isoformat()} is {-ahead_s:.0f} s old; "
                f"limit {self._limits.max_past_s:g} s (ingest.max_past_s)",
                "too_old",
            )

    def _plausible(self, device: str, telemetry: Telemetry) -> list[Measurement]:
        values = telemetry.values
        limits = self._limits
        if len(values) > limits.max_values_per_message:
            raise ProtocolError(
                f"{len(values)} values; limit {limits.max_values_per_message} "
                "(ingest.max_values_per_message)",
                "too_many_values",
            )
        for name, value in values.items():
            bounds = self._ranges.get(name)
            if bounds is None:
                bounds = self._ranges[name] = limits.range_of(name)
            if not bounds[0] <= value <= bounds[1]:
                raise ProtocolError(
                    f"values.{name} = {value:g} is outside [{bounds[0]:g}, {bounds[1]:g}] "
                    f"(ingest.limits.{name})",
                    "implausible",
                )
        known = self._series.setdefault(device, set())
        # Nearly every message repeats known names: check that without building a set.
        if not known.issuperset(values):
            new = values.keys() - known
            if len(known) + len(new) > limits.max_series_per_device:
                raise ProtocolError(
                    f"{len(new)} new reading name(s) would give {device!r} "
                    f"{len(known) + len(new)} series; limit {limits.max_series_per_device} "
                    "(ingest.max_series_per_device)",
                    "series_limit",
                )
            known.update(new)
        return self._map.measurements(device, values, telemetry.time)

    def _sequence(
        self, device: str, seq: int, when: datetime, points: list[Measurement]
    ) -> list[tuple[datetime, list[Measurement]]]:
        """The messages to accept now: none (a duplicate, or a far jump held back),
        this one, or a held one and this one when this one confirms it.

        A number far from the last one (a forged 999999, a rebooted device's 0) is
        believed only when the next message follows it: one forged message can then
        neither silence a device nor poison the gap count."""
        # With a shared subscription each gateway sees only some of a device's
        # messages, so its sequence has holes by design: skip the bookkeeping.
        if self.shared_group:
            return [(when, points)]
        window = self._limits.seq_window
        unconfirmed = None
        with self._lock:
            last = self._last_seq.get(device)
            held = self._held.pop(device, None)
            if held is not None and seq == held.seq + 1:
                self._last_seq[device] = seq
                self.stats.resyncs += 1
                self._events.append(
                    self._event(
                        "seq_resync",
                        device,
                        f"sequence restarted at {held.seq} (was {last})",
                        Severity.WARNING,
                        {"after": last, "next": held.seq},
                        held.time,
                    )
                )
                return [(held.time, held.points), (when, points)]
            if held is not None:
                unconfirmed = held.seq
            accepted = last is None or 0 < seq - last <= window
            if accepted:
                self._last_seq[device] = seq
            elif -window < seq - last <= 0 and seq != 0:
                self.stats.duplicates += 1
            else:
                self._held[device] = _Held(seq, points, when)
        if unconfirmed is not None:
            self._reject(
                device,
                f"sequence number {unconfirmed} is more than {window} from {last} "
                "and the next message did not follow it (ingest.seq_window)",
                "seq_out_of_window",
            )
        if not accepted:
            return []
        with self._lock:
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
        return [(when, points)]

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
        with self._lock:
            sent = self._sent.get(ack.id)
        # Only an ack of a command this gateway sent may set the device's live state.
        # Gateways sharing a site all hear each other's acks: not bad input.
        if sent is None and self.shared_group:
            return
        if sent is None or sent[0] != device:
            raise ProtocolError(
                f"ack of command {ack.id!r}, which this gateway did not send to {device!r} "
                "(or which expired)",
                "unknown_command",
            )
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
        if self.shared_group:
            # Each gateway hears only its share of a device's telemetry, so silence
            # here proves nothing; the last will (heard by every gateway) still counts.
            return
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
