"""gridpilot firmware for the ESP12F 4-relay board (MicroPython + umqtt.simple).

Copy logic.py, main.py and config.json to the board (`mpremote cp ...`). It joins
WiFi, sets its clock by NTP, connects to the broker with a retained last will of
"offline", then loops: take commands, publish telemetry, and fall back to the safe
state when the gateway's heartbeat has been silent for `revert_s`. The revert runs
even while WiFi or the broker is down: the board must be safe on its own.

All protocol and safety decisions are in logic.py, which the tests run on CPython
against the same pydantic models the gateway uses.
"""

import json
import time

import machine
import network
import ntptime
from umqtt.simple import MQTTClient

import logic

# MicroPython on the ESP8266 counts seconds from 2000-01-01, not 1970-01-01.
EPOCH_OFFSET_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


def now_s():
    return time.time() + EPOCH_OFFSET_S


def load_config():
    with open("config.json") as handle:
        return json.load(handle)


class Board:
    def __init__(self, cfg):
        self.cfg = cfg
        self.site = cfg["site"]
        self.device = cfg["device"]
        self.pins = [machine.Pin(p, machine.Pin.OUT) for p in cfg["relay_pins"]]
        self.nominal_kw = cfg["nominal_kw"]
        self.safe_state = cfg.get("safe_state")
        self.revert_s = cfg.get("revert_s", 60)
        self.interval_s = cfg.get("interval_s", 5)
        self.relays = logic.revert([False] * len(self.pins), self.safe_state)
        self.reverted = False
        self.silence_handled = False
        self.executed = logic.Executed(16)
        self.seq = 0
        self.last_heartbeat_s = now_s()
        self.client = None
        self.apply()

    def apply(self):
        for pin, on in zip(self.pins, self.relays):
            pin.value(1 if on else 0)

    def topic(self, kind):
        return logic.topic(self.site, self.device, kind)

    def publish(self, kind, payload, retain=False, qos=0):
        if self.client is not None:
            self.client.publish(self.topic(kind), json.dumps(payload), retain, qos)

    def publish_state(self):
        state = logic.board_state(self.relays, self.reverted)
        self.publish("state", logic.state_payload(self.device, "relay_board", now_s(), state), True, 1)

    def on_message(self, topic, msg):
        topic = topic.decode()
        if topic == logic.heartbeat_topic(self.site):
            self.last_heartbeat_s = now_s()
            self.silence_handled = False
            return
        if topic != self.topic("cmd"):
            return
        try:
            cmd = json.loads(msg)
        except ValueError:
            return
        self.relays, self.reverted, ack, actuated = logic.handle_relay_command(
            cmd if isinstance(cmd, dict) else {}, self.device, self.relays, self.reverted,
            now_s(), self.executed)
        if actuated:
            self.apply()
        self.publish("ack", ack, False, 1)
        self.publish_state()

    def read_powers_kw(self):
        # This board has no current transformers (one ADC pin on the ESP8266): power
        # is the load's nominal rating while its relay is closed. Boards with CTs
        # behind an ADC multiplexer measure here instead.
        return list(self.nominal_kw)

    def read_voltage_v(self):
        return self.cfg.get("nominal_voltage_v", 230.0)

    def connect(self):
        cfg = self.cfg
        client = MQTTClient(cfg["client_id"], cfg["broker_host"], cfg.get("broker_port", 1883),
                            keepalive=30)
        offline = json.dumps(logic.status(self.device, False))
        client.set_last_will(self.topic("status"), offline, True, 1)
        client.set_callback(self.on_message)
        client.connect()
        client.subscribe(self.topic("cmd"), 1)
        client.subscribe(logic.heartbeat_topic(self.site), 0)
        self.client = client
        self.publish("status", logic.status(self.device, True, now_s()), True, 1)
        self.publish_state()

    def check_revert(self):
        if not self.silence_handled and logic.revert_due(self.last_heartbeat_s, now_s(), self.revert_s):
            self.relays = logic.revert(self.relays, self.safe_state)
            self.reverted = True
            self.silence_handled = True
            self.apply()
            self.publish_state()

    def publish_telemetry(self):
        values = logic.board_values(self.relays, self.read_powers_kw(), self.read_voltage_v())
        self.publish("telemetry", logic.telemetry(self.device, self.seq, now_s(), values))
        self.seq += 1


def join_wifi(cfg, timeout_s=20):
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(cfg["wifi_ssid"], cfg["wifi_password"])
        for _ in range(timeout_s * 10):
            if wlan.isconnected():
                break
            time.sleep_ms(100)
    return wlan.isconnected()


def main():
    cfg = load_config()
    board = Board(cfg)
    if join_wifi(cfg):
        try:
            ntptime.settime()
        except OSError:
            pass  # keep the RTC; commands will look expired until NTP answers
    next_telemetry_s = now_s()
    retry_at_s = 0
    while True:
        try:
            if board.client is None and now_s() >= retry_at_s:
                join_wifi(cfg, 5)
                board.connect()
            if board.client is not None:
                board.client.check_msg()
                if now_s() >= next_telemetry_s:
                    board.publish_telemetry()
                    next_telemetry_s = now_s() + board.interval_s
        except OSError:
            board.client = None
            retry_at_s = now_s() + 5
        board.check_revert()
        time.sleep_ms(50)


# MicroPython runs main.py at boot as __main__; tests import it without running.
if __name__ == "__main__":
    main()
