"""The site simulator: every twin of the site config, stepped on the clock.

Each step takes demand, PV and prices from `grid.profiles`, gates loads by their
relays, moves battery, PV and peaker, lets the meter compute the net import
(load - pv - battery - peaker), applies the active faults and publishes each
device's telemetry. Given a seed and the same step times it publishes the same
numbers, so a test (or a benchmark) can replay a day.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from edge.devices import BatteryTwin, MeterTwin, PeakerTwin, PVTwin, RelayBoardTwin, make_twins
from edge.mqtt import connect, make_client, wait_clock, wait_for
from edge.protocol import ProtocolError, decode, fault_topic
from edge.sim.environment import GridModel, Profiles
from edge.sim.faults import Fault, FaultControl, Scenario
from grid.clock import Clock
from grid.config import SiteConfig
from grid.errors import ConfigError

log = logging.getLogger(__name__)


class _Active:
    def __init__(self, fault: Fault, until_s: float | None) -> None:
        self.fault = fault
        self.until_s = until_s
        self.frozen: dict[str, float] | None = None  # stuck_sensor: values at onset


class SiteSimulator:
    def __init__(
        self,
        site: SiteConfig,
        clock: Clock,
        broker_url: str | None,
        seed: int = 0,
        scenario: Scenario | None = None,
        *,
        interval_s: int = 5,
        telemetry_qos: int = 0,
        ambient_c: float = 25.0,
    ) -> None:
        if interval_s < 1:
            raise ConfigError(f"interval_s = {interval_s} must be at least 1 s")
        if scenario is not None:
            scenario.check(site)
        self.site = site
        self.clock = clock
        self.broker_url = broker_url
        self.seed = seed
        self.scenario = scenario
        self.interval_s = interval_s
        self.telemetry_qos = telemetry_qos
        self.twins = make_twins(site, clock)
        for twin in self.of(BatteryTwin):
            twin.ambient_c = ambient_c
        self.origin_s = clock.time()
        self.profiles = Profiles(site, self.origin_s, interval_s, seed)
        self.rng = np.random.default_rng(seed)
        self.grid = GridModel(site, self.rng)
        self.steps = 0
        self.last_step_s: float | None = None
        self._faults: dict[tuple[str, str], _Active] = {}
        self._pending = sorted(scenario.faults, key=lambda f: f.at_s) if scenario else []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._control: mqtt.Client | None = None
        if broker_url is None:
            for twin in self.twins.values():
                twin.online = True  # no broker: readings are computed, not sent

    def of(self, kind: type) -> list[Any]:
        return [t for t in self.twins.values() if isinstance(t, kind)]

    # -- life cycle ---------------------------------------------------------------------

    def connect(self) -> None:
        """Connect every twin and listen for faults; no stepping yet."""
        if self.broker_url is None:
            return
        try:
            self._connect(self.broker_url)
        except BaseException:
            self.stop()  # no half-connected site left behind
            raise

    def _connect(self, broker_url: str) -> None:
        for twin in self.twins.values():
            twin.connect(broker_url)
        subscribed = threading.Event()
        client = make_client(broker_url, f"gridpilot-sim-{self.site.site.name}")
        client.on_connect = lambda c, *_a: c.subscribe(fault_topic(self.site.site.name), qos=1)
        client.on_subscribe = lambda *_a: subscribed.set()
        client.on_message = self._on_control
        self._control = client
        connect(client, broker_url)
        wait_for(subscribed, 10.0, "simulator fault control", broker_url, client)

    def start(self) -> None:
        """Connect and step every `interval_s` of clock time in a thread."""
        self.connect()
        self._thread = threading.Thread(target=self._run, name="gridpilot-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._control is not None:
            self._control.disconnect()
            self._control.loop_stop()
        for twin in self.twins.values():
            twin.close()

    def _run(self) -> None:
        next_s = self.clock.time()
        while not self._stop.is_set():
            if not wait_clock(self.clock, next_s - self.clock.time(), self._stop):
                return
            try:
                self.step()
            except Exception:  # a bad step must not end the simulated site
                log.exception("simulator step failed")
            next_s += self.interval_s
            # After a long stall (a paused process), resume rather than replay.
            next_s = max(next_s, self.clock.time() - self.interval_s)

    # -- faults ---------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        fault.check(self.site)
        now_s = self.clock.time()
        until = None if fault.for_s is None else now_s + fault.for_s
        with self._lock:
            self._faults[(fault.kind, fault.device)] = _Active(fault, until)
        if fault.kind == "device_offline":
            self.twins[fault.device].set_online(False)
        log.info("fault injected: %s on %s", fault.kind, fault.device)

    def clear(self, fault_kind: str, device: str | None = None) -> int:
        """Clear active faults of a kind (on one device, or all); how many were cleared."""
        with self._lock:
            keys = [k for k in self._faults if k[0] == fault_kind and device in (None, k[1])]
            gone = [self._faults.pop(k) for k in keys]
        for active in gone:
            if active.fault.kind == "device_offline":
                self.twins[active.fault.device].set_online(True)
        return len(gone)

    def active_faults(self) -> list[Fault]:
        with self._lock:
            return [a.fault for a in self._faults.values()]

    def _on_control(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != fault_topic(self.site.site.name):
            return  # amqtt hands a new subscriber other topics' retained messages too
        try:
            control = decode(FaultControl, msg.payload)
            if control.action == "inject" and control.fault is not None:
                self.inject(control.fault)
            elif control.action == "clear" and control.kind is not None:
                self.clear(control.kind, control.device)
            else:
                raise ProtocolError("inject needs a fault, clear needs a kind")
        except (ProtocolError, ConfigError) as exc:
            log.warning("ignored fault control message: %s", exc)

    def _update_faults(self, now_s: float) -> None:
        elapsed = now_s - self.origin_s
        while self._pending and self._pending[0].at_s <= elapsed + 1e-9:
            scheduled = self._pending.pop(0)
            self.inject(Fault(**scheduled.model_dump(exclude={"at_s"})))
        with self._lock:
            ended = [a.fault for a in self._faults.values() if a.until_s and now_s >= a.until_s]
        for fault in ended:
            self.clear(fault.kind, fault.device)

    def _faulted(self, kind: str, device: str | None = None) -> list[_Active]:
        with self._lock:
            return [a for k, a in self._faults.items() if k[0] == kind and device in (None, k[1])]

    # -- one step --------------------------------------------------------------------------

    def step(self) -> dict[str, dict[str, float]]:
        """Advance to the clock's now; returns the readings published, by device."""
        now_s = self.clock.time()
        dt_s = self.interval_s if self.last_step_s is None else now_s - self.last_step_s
        dt_s = max(0.0, min(dt_s, 3600.0))
        self.last_step_s = now_s
        self._update_faults(now_s)
        profiles, i = self.profiles.at(now_s)

        for pv in self.of(PVTwin):
            pv.available_kw = float(profiles.pv_kw[pv.pv.id][i])
            shading = self._faulted("pv_shading", pv.id)
            pv.shading_fraction = shading[0].fault.size if shading else 0.0
            pv.tripped = bool(self._faulted("inverter_trip", pv.id))
        for battery in self.of(BatteryTwin):
            hot = self._faulted("battery_overtemp", battery.id)
            battery.extra_heat_c = hot[0].fault.size if hot else 0.0
            battery.tripped = bool(self._faulted("inverter_trip", battery.id))
        for board in self.of(RelayBoardTwin):
            with board.lock:
                for ch in range(board.channels):
                    load = next(
                        (
                            ld.id
                            for ld in self.site.assets.loads
                            if ld.board == board.id and ld.channel == ch + 1
                        ),
                        None,
                    )
                    board.demand_kw[ch] = float(profiles.load_kw[load][i]) if load else 0.0
        batteries = self.of(BatteryTwin)
        for twin in self.twins.values():
            if twin not in batteries:
                twin.step(dt_s, now_s)

        load_kw = sum(sum(b.powers_kw()) for b in self.of(RelayBoardTwin))
        pv_kw = sum(p.power_kw for p in self.of(PVTwin))
        peaker_kw = sum(p.power_kw for p in self.of(PeakerTwin))
        # Batteries last: one in peak-shaving mode sees the rest of the site's import.
        excess = load_kw - pv_kw - peaker_kw - sum(b.setpoint_kw for b in batteries)
        for battery in batteries:
            cap = battery.import_cap_kw
            battery.shave_kw = 0.0 if cap is None else max(0.0, excess - cap)
            battery.must_shave_kw = max(0.0, excess - self.site.grid.import_limit_kw)
            follow = battery.follow_import_kw
            battery.spare_kw = 0.0 if follow is None else max(0.0, follow - excess)
            battery.step(dt_s, now_s)
            excess -= battery.power_kw - battery.setpoint_kw
        battery_kw = sum(b.power_kw for b in batteries)
        net_kw = load_kw - pv_kw - battery_kw - peaker_kw
        factor = 1.0
        for spike in self._faulted("voltage_spike"):
            factor += spike.fault.size
        for sag in self._faulted("voltage_sag"):
            factor -= sag.fault.size
        sag_hz = sum(a.fault.size for a in self._faulted("frequency_sag"))
        voltage_v, frequency_hz = self.grid.step(net_kw, factor, sag_hz)
        for board in self.of(RelayBoardTwin):
            board.voltage_v = voltage_v
        for meter in self.of(MeterTwin):
            meter.power_kw = net_kw
            meter.voltage_v = voltage_v
            meter.frequency_hz = frequency_hz
            meter.import_price_eur_per_kwh = float(profiles.import_price_eur_per_kwh[i])
            meter.export_price_eur_per_kwh = float(profiles.export_price_eur_per_kwh[i])
            meter.step(dt_s, now_s)

        published: dict[str, dict[str, float]] = {}
        for twin in self.twins.values():
            if not twin.online:
                continue
            with twin.lock:
                values = self._reported(twin.id, twin.values())
            twin.publish_telemetry(values, now_s, self.telemetry_qos)
            published[twin.id] = values
        self.steps += 1
        return published

    def _reported(self, device: str, values: dict[str, float]) -> dict[str, float]:
        """What the device sends after the sensor and data faults (not the truth)."""
        out = dict(values)
        for active in self._faulted("soc_bias", device):
            if "soc_fraction" in out:
                out["soc_fraction"] = round(out["soc_fraction"] + active.fault.size, 5)
        for active in self._faulted("false_data_injection", device):
            name = active.fault.quantity or "power_kw"
            if name in out:
                out[name] = round(out[name] + active.fault.size, 4)
        for active in self._faulted("stuck_sensor", device):
            names = [active.fault.quantity] if active.fault.quantity else list(out)
            if active.frozen is None:
                active.frozen = {n: out[n] for n in names if n in out}
            out.update(active.frozen)
        for active in self._faulted("dropped_sensor", device):
            names = [active.fault.quantity] if active.fault.quantity else list(out)
            for name in names:
                out.pop(name, None)
        return out

    def readings(self) -> dict[str, dict[str, float]]:
        """True values of every twin now (before faults), for tests and the CLI."""
        return {t.id: t.values() for t in self.twins.values()}

    @property
    def now(self) -> datetime:
        return self.clock.now()


def fault_message(fault: Fault) -> bytes:
    return json.dumps(FaultControl(action="inject", fault=fault).model_dump(mode="json")).encode()
