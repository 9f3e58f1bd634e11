"""`gridpilot gateway run` as a real process, and a device publishing past readings."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.journal import read_segment
from edge.protocol import topic
from tests.edge.conftest import EXAMPLE
from tests.services.process import wait_until

GRIDPILOT = str(Path(sys.executable).with_name("gridpilot"))
SITE = "riverside-depot"


def site_file(root: Path) -> Path:
    """The example site with its state (journal, spool) under `root`."""
    text = EXAMPLE.read_text().split("[settings]")[0]
    path = root / "site.toml"
    path.write_text(text + f'[settings]\nstate_dir = "{root}/state"\n')
    return path


class GatewayProcess:
    def __init__(self, root: Path, broker_url: str, store_url: str, client_id: str = "gw-proc"):
        self.root = root
        self.argv = [
            GRIDPILOT,
            "gateway",
            "run",
            "--site",
            str(site_file(root)),
            "--broker",
            broker_url,
            "--store",
            store_url,
            "--client-id",
            client_id,
        ]
        self.out = root / "gateway.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.out.write_text("")
        self.proc = subprocess.Popen(
            self.argv, stdout=self.out.open("w"), stderr=subprocess.STDOUT, cwd=self.root
        )
        wait_until(lambda: "Ctrl-C stops" in self.out.read_text(), 30, "gateway process up")

    def signal(self, signum: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def stop(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)

    def stats(self) -> dict:
        text = self.out.read_text()
        return json.loads(text[text.index("{") :])

    def journaled(self) -> int:
        """Telemetry messages in the journal: received and not yet stored."""
        segments = (self.root / "state" / "journal").glob("*.journal")
        return sum(1 for path in segments for _ in read_segment(path))


class Meter:
    """The site's meter as a bare MQTT client, sending readings stamped in the past."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="meter-proc")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq = 0
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def send(self, n: int) -> None:
        for _ in range(n):
            body = {
                "v": 1,
                "device": "meter-1",
                "seq": self.seq,
                "time": (self.t0 + timedelta(seconds=self.seq)).isoformat(),
                "values": {"power_kw": float(self.seq)},
            }
            info = self.client.publish(topic(SITE, "meter-1", "telemetry"), json.dumps(body), qos=1)
            info.wait_for_publish(5)
            self.seq += 1

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.t0, self.t0 + timedelta(seconds=self.seq + 1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def settle(seconds: float) -> None:
    """Let a process take in what was sent (what follows holds whatever it managed)."""
    time.sleep(seconds)
