"""Scale-out on one Mosquitto: several `gridpilot gateway run --shared-group` processes
split the telemetry of many devices (MQTT 5 `$share/...`), one is killed mid-run and
restarted, and the store is counted. The test runs it short; `bench/reliability.py`
runs it long."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.protocol import topic
from grid.store.influx import InfluxStore
from tests.services.process import wait_until

GRIDPILOT = str(Path(sys.executable).with_name("gridpilot"))
SITE = "scale"


def site_file(root: Path, devices: int) -> Path:
    lines = [
        f'[site]\nname = "{SITE}"\n',
        "[grid]\nimport_limit_kw = 1000.0\nexport_limit_kw = 1000.0\n",
        "[tariff]\nimport_periods = [",
        "  { start = 00:00:00, end = 00:00:00, price_eur_per_kwh = 0.2 },\n]\n",
        f'[settings]\nstate_dir = "{root}/state"\n',
    ]
    lines += [f'[[devices]]\nid = "dev-{d:04d}"\nkind = "meter"\n' for d in range(devices)]
    path = root / "scale.toml"
    path.write_text("\n".join(lines))
    return path


class GatewayProc:
    def __init__(self, name: str, site: Path, broker_url: str, store_url: str, root: Path):
        self.name = name
        self.argv = [
            GRIDPILOT,
            "gateway",
            "run",
            "--site",
            str(site),
            "--broker",
            broker_url,
            "--store",
            store_url,
            "--client-id",
            name,
            "--shared-group",
            "gridpilot",
        ]
        self.out = root / f"{name}.out"
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.stats: list[dict] = []  # one per clean exit

    def start(self) -> None:
        self.out.write_text("")
        self.proc = subprocess.Popen(
            self.argv, stdout=self.out.open("w"), stderr=subprocess.STDOUT, cwd=self.root
        )
        wait_until(lambda: "Ctrl-C stops" in self.out.read_text(), 60, f"{self.name} up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def terminate(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        text = self.out.read_text()
        if code == 0 and "{" in text:
            self.stats.append(json.loads(text[text.index("{") :]))


class Devices:
    """Many meters from one light paho client: one reading per device per round, QoS 1."""

    def __init__(self, port: int, devices: int) -> None:
        self.devices = devices
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scale-devices")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        self.rounds = 0
        self.sent = 0

    def round(self) -> float:
        """Publish one round; the wall seconds it took."""
        started = time.perf_counter()
        when = (self.t0 + timedelta(seconds=self.rounds)).isoformat()
        infos = []
        for d in range(self.devices):
            device = f"dev-{d:04d}"
            body = {"v": 1, "device": device, "seq": self.rounds, "time": when}
            body["values"] = {"power_kw": float(d % 100)}
            infos.append(self.client.publish(topic(SITE, device, "telemetry"), json.dumps(body), 1))
        for info in infos:
            info.wait_for_publish(30)
        self.rounds += 1
        self.sent += self.devices
        return time.perf_counter() - started

    def window(self) -> tuple[datetime, datetime]:
        return self.t0, self.t0 + timedelta(seconds=self.rounds + 1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stored_points(store: InfluxStore, window: tuple[datetime, datetime]) -> int:
    rows = store._influxql(
        f"SELECT count(value) FROM telemetry WHERE site='{SITE}' "
        f"AND time >= {int(window[0].timestamp() * 1e9)} "
        f"AND time < {int(window[1].timestamp() * 1e9)}"
    )
    return int(rows[0]["values"][0][1]) if rows else 0


@dataclass
class ScaleResult:
    devices: int
    rounds: int
    sent: int
    stored: int
    written: int  # points the gateways report writing (more than stored = duplicates)
    messages_per_s: float
    shares: dict[str, int] = field(default_factory=dict)  # gateway -> telemetry received

    @property
    def lost(self) -> int:
        return self.sent - self.stored

    @property
    def duplicated(self) -> int:
        return max(0, self.written - self.stored)


def run_scale_out(
    root: Path,
    broker_port: int,
    broker_url: str,
    influx_url: str,
    influx_base: str,
    *,
    devices: int,
    rounds_per_phase: int,
    database: str = "scale",
) -> ScaleResult:
    """Two gateways, then a third; one is SIGKILLed and restarted; every phase publishes
    `rounds_per_phase` rounds."""
    site = site_file(root, devices)
    store_url = f"{influx_url}/{database}?create=1"
    gateways = [GatewayProc(f"gw-{i}", site, broker_url, store_url, root) for i in range(3)]
    reader = InfluxStore(influx_base, database, spool_path=root / "reader-spool.db")
    publisher = Devices(broker_port, devices)
    busy_s = 0.0
    try:
        for gateway in gateways[:2]:
            gateway.start()
        busy_s += sum(publisher.round() for _ in range(rounds_per_phase))
        gateways[2].start()
        busy_s += sum(publisher.round() for _ in range(rounds_per_phase))
        gateways[1].kill()  # mid-run, with whatever it held
        busy_s += sum(publisher.round() for _ in range(rounds_per_phase))
        gateways[1].start()  # same client id: its session and journal come back
        busy_s += sum(publisher.round() for _ in range(rounds_per_phase))
        wait_until(
            lambda: stored_points(reader, publisher.window()) >= publisher.sent,
            120,
            "every point stored",
        )
    finally:
        publisher.close()
        for gateway in gateways:
            gateway.terminate()
    stored = stored_points(reader, publisher.window())
    reader.close()
    shares = {g.name: sum(s["received"] for s in g.stats) for g in gateways}
    written = sum(s["stored"] for g in gateways for s in g.stats)
    return ScaleResult(
        devices=devices,
        rounds=publisher.rounds,
        sent=publisher.sent,
        stored=stored,
        written=written,
        messages_per_s=publisher.sent / busy_s if busy_s else 0.0,
        shares=shares,
    )
