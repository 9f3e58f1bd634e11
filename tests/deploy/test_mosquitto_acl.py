"""deploy/'s Mosquitto access rules on a real broker: passwords from deploy/setup.sh,
the ACL file as shipped. A device speaks only for itself; the gateway reads telemetry
and sends commands. MQTT 5 so the broker says "not authorized" instead of dropping
the message silently."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.mqtt import connect, make_client, shown
from tests.services.mosquitto import MosquittoServer
from tests.services.process import require_binary

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
SITE = "riverside-depot"
NOT_AUTHORIZED = 135  # MQTT 5 reason code


def run_setup(tmp_path: Path) -> Path:
    require_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    secrets = tmp_path / "secrets"
    subprocess.run(
        ["bash", str(DEPLOY / "setup.sh")],
        env={
            "PATH": "/usr/bin:/bin:/usr/sbin",
            "SECRETS": str(secrets),
            "ENV_FILE": str(tmp_path / ".env"),
        },
        check=True,
        capture_output=True,
    )
    return secrets


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@dataclass
class Broker:
    server: MosquittoServer
    passwords: dict[str, str]

    def url(self, user: str, password: str | None = None) -> str:
        secret = self.passwords[user] if password is None else password
        return f"mqtt://{user}:{secret}@127.0.0.1:{self.server.port}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    secrets = run_setup(tmp_path)
    env = read_env(tmp_path / ".env")
    devices = read_env(secrets / "devices.env")
    passwords = {
        "simulator": env["MQTT_SIMULATOR_PASSWORD"],
        "bess-1": devices["MQTT_PASSWORD_BESS_1"],
        "meter-1": devices["MQTT_PASSWORD_METER_1"],
    }
    # the gateway's password is only in the site file it logs in with
    site = (secrets / "site.toml").read_text()
    passwords["gateway"] = site.split("mqtt://gateway:")[1].split("@")[0]
    root = tmp_path / "mosquitto"
    root.mkdir()
    server = MosquittoServer(
        root,
        auth=(
            # as root mosquitto drops to its own user, which cannot read the test's
            # temp dir; `user root` keeps it (ignored when not started as root)
            "user root\nallow_anonymous false\n"
            f"password_file {secrets / 'passwd'}\n"
            f"acl_file {DEPLOY / 'mosquitto' / 'acl'}\n"
        ),
    )
    server.start()
    yield Broker(server, passwords)
    server.stop()


class Client:
    """A connected MQTT 5 client that records what it hears and each PUBACK's code."""

    def __init__(self, url: str, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.connect_code: int | None = None
        self._acks: dict[int, queue.Queue[int]] = {}
        self._subacks: queue.Queue[list[int]] = queue.Queue()
        self.client = make_client(url, client_id, v5=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self._subacks.put(
            [c.value for c in codes]
        )
        connect(self.client, url, v5=True)

    def _on_connect(self, _c, _u, _flags, reason, _props) -> None:
        self.connect_code = reason.value
        self.connected.set()

    def _on_publish(self, _c, _u, mid, reason, _props) -> None:
        self._acks.setdefault(mid, queue.Queue()).put(reason.value)

    def subscribe(self, topic: str) -> list[int]:
        self.client.subscribe(topic, qos=1)
        return self._subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> int:
        """The broker's reason code for this QoS 1 publish."""
        info = self.client.publish(topic, payload, qos=1)
        return self._acks.setdefault(info.mid, queue.Queue()).get(timeout=10)

    def heard(self, until_payload: bytes) -> list[tuple[str, bytes]]:
        """Messages up to and including `until_payload` (a marker sent last)."""
        out = []
        while True:
            message = self.messages.get(timeout=10)
            out.append(message)
            if message[1] == until_payload:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connected(url: str, client_id: str) -> Client:
    c = Client(url, client_id)
    assert c.connected.wait(10), f"{client_id} got no CONNACK"
    return c


def topic(device: str, kind: str) -> str:
    return f"gridpilot/{SITE}/{device}/{kind}"


def test_a_device_cannot_publish_another_devices_topics_or_commands(broker: Broker) -> None:
    gateway = connected(broker.url("gateway"), "gateway")
    battery = connected(broker.url("bess-1"), "bess-1")
    try:
        assert gateway.connect_code == 0 and battery.connect_code == 0
        assert gateway.subscribe(f"gridpilot/{SITE}/#") == [1]

        assert battery.publish(topic("bess-1", "telemetry"), b"own reading") == 0
        # speaking for the meter, or commanding a device (even itself): refused
        for forged in (
            topic("meter-1", "telemetry"),
            topic("meter-1", "status"),
            topic("relay-board-1", "cmd"),
            topic("bess-1", "cmd"),
            topic("gateway", "heartbeat"),
        ):
            assert battery.publish(forged, b"forged") == NOT_AUTHORIZED, forged
        assert battery.publish(topic("bess-1", "ack"), b"marker") == 0

        heard = gateway.heard(until_payload=b"marker")
        assert heard == [
            (topic("bess-1", "telemetry"), b"own reading"),
            (topic("bess-1", "ack"), b"marker"),
        ]
    finally:
        gateway.close()
        battery.close()


def test_gateway_commands_reach_only_the_addressed_device(broker: Broker) -> None:
    gateway = connected(broker.url("gateway"), "gateway")
    battery = connected(broker.url("bess-1"), "bess-1")
    try:
        assert battery.subscribe(topic("bess-1", "cmd")) == [1]
        # a device may not listen to another device's commands: Mosquitto grants the
        # subscription but delivers nothing the ACL does not let it read
        battery.subscribe(topic("relay-board-1", "cmd"))
        assert gateway.publish(topic("relay-board-1", "cmd"), b"not for you") == 0
        assert gateway.publish(topic("bess-1", "cmd"), b"set_power") == 0
        assert battery.heard(until_payload=b"set_power") == [(topic("bess-1", "cmd"), b"set_power")]
        # and the gateway does not speak for devices either
        assert gateway.publish(topic("bess-1", "telemetry"), b"forged") == NOT_AUTHORIZED
    finally:
        gateway.close()
        battery.close()


def test_wrong_password_and_anonymous_clients_are_refused(broker: Broker) -> None:
    wrong = connected(broker.url("bess-1", password="guess"), "intruder")
    anonymous = connected(f"mqtt://127.0.0.1:{broker.server.port}", "anonymous")
    try:
        assert wrong.connect_code == anonymous.connect_code == NOT_AUTHORIZED
    finally:
        wrong.close()
        anonymous.close()


def test_broker_passwords_stay_out_of_logs_and_messages() -> None:
    assert shown("mqtt://gateway:s3cret@mosquitto:1883") == "mqtt://gateway:***@mosquitto:1883"
    assert shown("mqtt://127.0.0.1:1883") == "mqtt://127.0.0.1:1883"
