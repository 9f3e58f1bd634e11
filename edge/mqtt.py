"""The few paho-mqtt details every client of gridpilot shares: URLs, clients, waiting."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from grid.clock import Clock
from grid.errors import ConfigError, GridpilotError


class BrokerUnavailable(GridpilotError):
    """The MQTT broker could not be reached; start it or fix the broker URL."""

    exit_code = 4


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of `mqtt://host:port` or `mqtts://host:port`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"broker url {url!r}: want mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker url {url!r}: port must be a number 1-65535") from None
    return parts.hostname, port, tls


def shown(url: str) -> str:
    """The broker URL for logs and messages: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def make_client(
    url: str,
    client_id: str,
    *,
    v5: bool = False,
    persistent: bool = False,
    will: tuple[str, bytes] | None = None,
) -> mqtt.Client:
    """A client set up for `url` but not yet connected (see `connect`).

    `persistent` keeps the session (subscriptions and queued QoS 1 messages) at the
    broker across disconnects, which is what lets a restart lose nothing."""
    _, _, tls = parse_broker_url(url)
    if v5:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
    if tls:
        client.tls_set()
    parts = urlsplit(url)
    if parts.username:  # mqtt://user:password@host: a broker with a password file and ACLs
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    # Queue without limit while the broker is away: QoS 1 messages then go out on
    # reconnect in order instead of being refused.
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.on_socket_open = _no_delay
    return client


def _no_delay(_client: mqtt.Client, _userdata: object, sock: object) -> None:
    # Commands and acks are small packets: with Nagle's algorithm on, each waits for the
    # previous segment's delayed ACK, which put ~90 ms on every command round trip.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]


def connect(
    client: mqtt.Client,
    url: str,
    *,
    keepalive_s: int = 30,
    v5: bool = False,
    persistent: bool = False,
) -> None:
    """Start the network thread; it connects now and reconnects after any loss."""
    host, port, _ = parse_broker_url(url)
    if v5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        # One hour of session after a disconnect: long enough for a broker restart.
        props.SessionExpiryInterval = 3600 if persistent else 0
        client.connect_async(host, port, keepalive_s, clean_start=not persistent, properties=props)
    else:
        client.connect_async(host, port, keepalive_s)
    client.loop_start()


def wait_for(
    event: threading.Event, timeout_s: float, what: str, url: str, client: mqtt.Client | None = None
) -> None:
    """Wait for a connect/subscribe event; on timeout stop `client`'s network thread
    (it would otherwise retry forever in the background) and raise BrokerUnavailable."""
    if not event.wait(timeout_s):
        if client is not None:
            client.loop_stop()
        raise BrokerUnavailable(
            f"{what}: no connection to the broker at {shown(url)} within {timeout_s} s"
        )


def wait_clock(clock: Clock, seconds: float, stop: threading.Event) -> bool:
    """Wait `seconds` of clock time (simulated or real); False when `stop` was set first.

    Sleeps in short wall-clock slices so a stop is noticed at once, whatever the
    clock's speed, and a hand-advanced clock is followed as soon as it moves."""
    deadline = clock.time() + max(0.0, seconds)
    speed = getattr(clock, "speed", 1.0)
    while not stop.is_set():
        remaining = deadline - clock.time()
        if remaining <= 0:
            return True
        wall = remaining / speed if speed else 0.005
        stop.wait(min(max(wall, 0.001), 0.1))
    return False
