"""The gateway against a real Mosquitto: ingest, commands, bad input, restarts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.gateway import Gateway
from edge.protocol import Telemetry, encode, topic
from edge.sim import SiteSimulator
from grid.errors import DeviceUnavailable
from grid.store.influx import InfluxStore
from grid.store.sqlite import SQLiteStore
from tests.edge.conftest import NOON, Rig, make_rig
from tests.services.process import wait_until


def raw_client(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-test")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_telemetry_lands_in_sqlite_under_site_asset_ids(rig: Rig) -> None:
    rig.steps(3)
    stored = {(m.asset, m.quantity): m for m in rig.store.latest(rig.name)}
    expected_units = {
        ("server-room", "power_kw"): "kW",
        ("ev-chargers", "current_a"): "A",
        ("hvac-office", "relay_on"): "",
        ("relay-board-1", "supply_voltage_v"): "V",
        ("battery", "soc_fraction"): "",
        ("battery", "temperature_c"): "C",
        ("pv-roof", "limit_kw"): "kW",
        ("gas-peaker", "running"): "",
        ("gas-peaker", "fuel_kw"): "kW",
        ("grid", "frequency_hz"): "Hz",
        ("grid", "voltage_v"): "V",
        ("tariff", "import_price_eur_per_kwh"): "EUR/kWh",
        ("tariff", "export_price_eur_per_kwh"): "EUR/kWh",
    }
    for key, unit in expected_units.items():
        assert stored[key].unit == unit, key
    assert stored[("tariff", "import_price_eur_per_kwh")].value == 0.29  # 12:00 Berlin
    assert len(rig.series("grid", "power_kw")) == 3
    # The live state holds the same newest values.
    live = rig.gateway.state.latest("grid", "power_kw")
    assert live is not None and live.value == stored[("grid", "power_kw")].value
    assert rig.gateway.state.age_s("grid", "power_kw", rig.clock.now()) == 0.0
    assert rig.gateway.stats.malformed == 0 and rig.gateway.stats.seq_gaps == 0


def test_telemetry_lands_in_a_real_influxd(site, mosquitto, influxd, tmp_path: Path) -> None:
    store = InfluxStore.from_url(influxd.url("edge_ingest"), spool_dir=tmp_path)
    rig = make_rig(site, mosquitto.url, store)
    try:
        rig.steps(4)
        assert len(rig.series("grid", "power_kw")) == 4
        assert len(rig.series("cold-store", "current_a")) == 4
        assert store.pending_points() == 0
    finally:
        rig.sim.stop()
        rig.gateway.stop()
        store.close()


def test_command_reaches_the_board_and_the_ack_updates_state(rig: Rig) -> None:
    rig.steps(1)
    board = rig.sim.twins["relay-board-1"]
    command = rig.command("relay-board-1", "set_relay", "cmd-1", channel=3, on=True)
    ack = rig.gateway.send_command(command, 5)
    assert ack.result == "ok" and ack.state["relays"] == [True, True, True, False]
    assert board.relays == [True, True, True, False]
    wait_until(
        lambda: rig.gateway.state.device("relay-board-1").state["relays"][2], 5, "state updated"
    )
    rig.steps(1)
    assert rig.series("ev-chargers", "relay_on") == [0.0, 1.0]
    assert rig.series("ev-chargers", "power_kw")[-1] > 0.0
    # The same id again: the same ack comes back and the relay is not switched twice.
    again = rig.gateway.send_command(command, 5)
    assert again == ack
    assert board.commands_executed == 1


def test_device_refusals_come_back_as_acks_naming_the_problem(rig: Rig) -> None:
    bad_channel = rig.command("relay-board-1", "set_relay", "cmd-2", channel=9, on=True)
    ack = rig.gateway.send_command(bad_channel, 5)
    assert ack.result == "rejected" and "params.channel = 9" in ack.detail
    too_much = rig.command("bess-1", "set_power", "cmd-3", power_kw=99.0)
    ack = rig.gateway.send_command(too_much, 5)
    assert ack.result == "rejected" and "25" in ack.detail
    stale = rig.command("peaker-1", "start", "cmd-4")
    rig.clock.advance(timedelta(minutes=10))
    ack = rig.gateway.send_command(stale, 5)
    assert ack.result == "expired"
    assert rig.sim.twins["peaker-1"].mode == "off"


def test_offline_or_silent_device_raises_device_unavailable(rig: Rig) -> None:
    rig.sim.twins["pv-inv-1"].set_online(False)
    wait_until(lambda: not rig.gateway.state.device("pv-inv-1").online, 5, "offline")
    with pytest.raises(DeviceUnavailable, match="'pv-inv-1' is offline"):
        rig.gateway.send_command(rig.command("pv-inv-1", "set_curtailment", "c", limit_kw=5), 2)
    # A device that is online but never answers: its session is gone, its status stays.
    peaker = rig.sim.twins["peaker-1"]
    peaker._client.loop_stop()
    with pytest.raises(DeviceUnavailable, match="did not acknowledge"):
        rig.gateway.send_command(rig.command("peaker-1", "start", "c2"), 0.5)


def test_a_thousand_malformed_payloads_are_counted_and_ingest_goes_on(rig: Rig, mosquitto) -> None:
    client = raw_client(mosquitto.port)
    good = Telemetry(device="meter-1", seq=0, time=NOON, values={"power_kw": 1.0})
    bad = [
        (topic(rig.name, "meter-1", "telemetry"), b"not json"),
        (topic(rig.name, "meter-1", "telemetry"), b"[1, 2]"),
        (topic(rig.name, "meter-1", "telemetry"), b'{"v": 1}'),
        (topic(rig.name, "meter-1", "telemetry"), encode(good).replace(b'"v":1', b'"v":7')),
        (topic(rig.name, "meter-1", "telemetry"), encode(good).replace(b"1.0", b"NaN")),
        (topic(rig.name, "bess-1", "telemetry"), encode(good)),  # wrong device in payload
        (topic(rig.name, "ghost", "telemetry"), encode(good)),  # not a device of the site
        (topic(rig.name, "meter-1", "ack"), b'{"v": 1, "id": ""}'),
        (topic(rig.name, "meter-1", "status"), b'{"online": "maybe"}'),
        (topic(rig.name, "meter-1", "state"), b"\xff\xfe"),
    ]
    for i in range(1000):
        name, payload = bad[i % len(bad)]
        client.publish(name, payload, qos=1)
    wait_until(lambda: rig.gateway.stats.malformed == 1000, 20, "1000 malformed counted")
    client.loop_stop()
    client.disconnect()
    rig.steps(2)
    assert len(rig.series("grid", "power_kw")) == 2
    assert rig.gateway.stats.malformed == 1000


def test_sequence_gaps_and_duplicates_are_detected(rig: Rig, mosquitto) -> None:
    client = raw_client(mosquitto.port)
    name = topic(rig.name, "meter-1", "telemetry")
    for i, seq in enumerate([0, 1, 1, 5, 6]):
        msg = Telemetry(
            device="meter-1", seq=seq, time=NOON + timedelta(seconds=i), values={"power_kw": 2.0}
        )
        client.publish(name, encode(msg), qos=1).wait_for_publish(5)
    wait_until(lambda: rig.gateway.last_seq("meter-1") == 6, 5, "seq 6")
    client.loop_stop()
    client.disconnect()
    stats = rig.gateway.stats
    assert (stats.duplicates, stats.seq_gaps, stats.missing) == (1, 1, 3)
    rig.gateway.flush()
    gaps = rig.store.query_events(rig.name, NOON, NOON + timedelta(hours=1), kind="seq_gap")
    assert [e.data["missing"] for e in gaps] == [3]


def test_broker_restart_loses_no_qos1_message(site, persistent_mosquitto, tmp_path: Path) -> None:
    broker = persistent_mosquitto
    store = SQLiteStore(tmp_path / "restart.db")
    from grid.clock import SimClock

    clock = SimClock(start=NOON)
    gateway = Gateway(site, store, clock, broker.url, client_id="gw-restart", offline_after_s=1e6)
    gateway.start()
    sim = SiteSimulator(site, clock, broker.url, seed=1, interval_s=60, telemetry_qos=1)
    sim.connect()

    def step(n: int) -> None:
        for _ in range(n):
            clock.advance(60)
            sim.step()

    try:
        step(10)
        broker.stop()  # with messages still in flight
        step(10)  # published while the broker is down: queued by the devices' clients
        broker.start()
        step(10)
        total = sim.twins["meter-1"].seq
        wait_until(lambda: gateway.last_seq("meter-1") == total - 1, 30, "all telemetry in")
        wait_until(
            lambda: all(gateway.last_seq(t.id) == t.seq - 1 for t in sim.twins.values()),
            30,
            "every device caught up",
        )
        gateway.flush()
        assert total == 30
        assert (
            len(store.query(site.site.name, "grid", "power_kw", NOON, clock.now() + timedelta(1)))
            == 30
        )
        assert gateway.stats.seq_gaps == 0
        assert gateway.stats.connects >= 2
        # The gateway resumed: it still commands devices after the restart.
        now = clock.now()
        from edge.protocol import Command

        ack = gateway.send_command(
            Command(
                id="after-restart",
                device="relay-board-1",
                action="set_relay",
                params={"channel": 4, "on": True},
                issued_at=now,
                expires_at=now + timedelta(minutes=5),
            ),
            10,
        )
        assert ack.result == "ok"
    finally:
        sim.stop()
        gateway.stop()
        store.close()


def test_gateways_share_telemetry_through_a_shared_subscription(
    site, mosquitto, tmp_path: Path
) -> None:
    from grid.clock import SimClock

    clock = SimClock(start=NOON)
    store = SQLiteStore(tmp_path / "shared.db")
    gateways = [
        Gateway(site, store, clock, mosquitto.url, client_id=f"gw-{i}", shared_group="edge")
        for i in range(2)
    ]
    for gateway in gateways:
        gateway.start()
    sim = SiteSimulator(site, clock, mosquitto.url, interval_s=60)
    sim.connect()
    try:
        for _ in range(20):
            clock.advance(60)
            sim.step()

        def stored() -> int:
            for gateway in gateways:
                gateway.flush()
            return sum(g.stats.stored for g in gateways)

        sent = sum(len(values) for values in sim.readings().values()) * 20
        wait_until(lambda: stored() == sent, 10, "all telemetry stored")
        assert all(g.stats.stored > 0 for g in gateways)  # both took a share
        assert (
            len(store.query(site.site.name, "grid", "power_kw", NOON, clock.now() + timedelta(1)))
            == 20
        )
        # Each gateway gets the acks of its own commands (acks are not shared).
        for i, gateway in enumerate(gateways):
            wait_until(lambda g=gateway: g.state.device("bess-1").online, 5, "online")
            now = clock.now()
            from edge.protocol import Command

            ack = gateway.send_command(
                Command(
                    id=f"share-{i}",
                    device="bess-1",
                    action="set_power",
                    params={"power_kw": float(i)},
                    issued_at=now,
                    expires_at=now + timedelta(minutes=1),
                ),
                5,
            )
            assert ack.result == "ok"
    finally:
        sim.stop()
        for gateway in gateways:
            gateway.stop()
        store.close()
    assert json.loads(json.dumps(gateways[0].stats.as_dict()))["malformed"] == 0
