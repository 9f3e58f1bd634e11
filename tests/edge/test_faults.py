"""Each injected fault leaves its own signature in the telemetry the gateway stored."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.protocol import fault_topic
from edge.sim import Fault, SiteSimulator, load_scenario
from edge.sim.simulator import fault_message
from grid.clock import SimClock
from grid.errors import ConfigError
from tests.edge.conftest import NOON, Rig
from tests.services.process import wait_until

LOADS = ("server-room", "cold-store", "ev-chargers", "hvac-office")


def split(rig: Rig, asset: str, quantity: str, before: int) -> tuple[list[float], list[float]]:
    values = rig.series(asset, quantity)
    return values[:before], values[before:]


def run(rig: Rig, fault: Fault, before: int = 5, during: int = 10) -> None:
    rig.steps(before)
    rig.sim.inject(fault)
    rig.steps(during)


def test_pv_shading_cuts_output_to_the_unshaded_share(rig: Rig) -> None:
    run(rig, Fault(kind="pv_shading", device="pv-inv-1", magnitude=0.7))
    samples = rig.store.query(rig.name, "pv-roof", "power_kw", NOON, rig.clock.now() + timedelta(1))
    ratios = []
    for sample in samples:
        chunk, i = rig.sim.profiles.at(sample.time.timestamp())
        ratios.append(sample.value / chunk.pv_kw["pv-roof"][i])
    assert ratios[:5] == pytest.approx([1.0] * 5, abs=1e-3)
    assert ratios[5:] == pytest.approx([0.3] * 10, abs=1e-3)


@pytest.mark.parametrize(
    ("kind", "low", "high"), [("voltage_spike", 255, 280), ("voltage_sag", 170, 200)]
)
def test_voltage_fault_shows_at_meter_and_relay_board(
    rig: Rig, kind: str, low: float, high: float
) -> None:
    run(rig, Fault(kind=kind, device="meter-1"))
    before, during = split(rig, "grid", "voltage_v", 5)
    assert all(220 < v < 240 for v in before)
    assert all(low < v < high for v in during)
    _, board = split(rig, "relay-board-1", "supply_voltage_v", 5)
    assert board == during


def test_battery_overtemp_heats_cells_and_derates_power(rig: Rig) -> None:
    rig.gateway.send_command(rig.command("bess-1", "set_power", "b1", power_kw=20.0), 5)
    run(rig, Fault(kind="battery_overtemp", device="bess-1", magnitude=80.0), during=20)
    before, during = split(rig, "battery", "temperature_c", 5)
    assert max(before) < 30 and max(during) > 55
    _, power = split(rig, "battery", "power_kw", 5)
    assert power[0] == pytest.approx(20.0)
    assert power[-1] < 5.0  # derated while SoC is still far from its floor
    assert rig.series("battery", "soc_fraction")[-1] > 0.3


def test_inverter_trip_drops_pv_output_while_sun_is_available(rig: Rig) -> None:
    run(rig, Fault(kind="inverter_trip", device="pv-inv-1"))
    before, during = split(rig, "pv-roof", "power_kw", 5)
    _, available = split(rig, "pv-roof", "available_kw", 5)
    assert min(before) > 1.0
    assert during == [0.0] * 10
    assert min(available) > 1.0


def test_soc_bias_shifts_reported_soc_by_the_bias(rig: Rig) -> None:
    run(rig, Fault(kind="soc_bias", device="bess-1", magnitude=0.15))
    soc = rig.series("battery", "soc_fraction")
    steps = [b - a for a, b in itertools.pairwise(soc)]
    assert steps[4] == pytest.approx(0.15, abs=1e-3)  # the onset
    assert all(abs(s) < 1e-3 for s in steps[:4] + steps[5:])
    true_soc = rig.sim.twins["bess-1"].soc_fraction
    assert soc[-1] - true_soc == pytest.approx(0.15, abs=1e-4)


def test_stuck_sensor_repeats_one_value_while_the_site_moves(rig: Rig) -> None:
    run(rig, Fault(kind="stuck_sensor", device="meter-1", quantity="power_kw"))
    before, during = split(rig, "grid", "power_kw", 5)
    _, frequency = split(rig, "grid", "frequency_hz", 5)
    assert len(set(before)) > 1
    assert len(set(during)) == 1
    assert len(set(frequency)) > 1


def test_dropped_sensor_leaves_a_hole_while_the_device_stays_online(rig: Rig) -> None:
    run(rig, Fault(kind="dropped_sensor", device="pv-inv-1", quantity="power_kw"))
    assert len(rig.series("pv-roof", "power_kw")) == 5
    assert len(rig.series("pv-roof", "limit_kw")) == 15
    assert rig.gateway.state.device("pv-inv-1").online
    assert rig.gateway.stats.seq_gaps == 0


def test_device_offline_stops_telemetry_and_is_recorded(rig: Rig) -> None:
    run(rig, Fault(kind="device_offline", device="pv-inv-1"))
    wait_until(lambda: not rig.gateway.state.device("pv-inv-1").online, 5, "offline seen")
    assert len(rig.series("pv-roof", "power_kw")) == 5
    assert len(rig.series("grid", "power_kw")) == 15
    rig.gateway.flush()
    events = rig.store.query_events(rig.name, NOON, rig.clock.now() + timedelta(1), kind="offline")
    assert [e.asset for e in events] == ["pv-inv-1"]
    rig.sim.clear("device_offline")
    rig.steps(3)
    assert len(rig.series("pv-roof", "power_kw")) == 8
    assert rig.gateway.state.device("pv-inv-1").online


def balance_residual(rig: Rig) -> list[float]:
    """Stored meter import minus what the stored asset readings say it must be."""
    series = {
        name: rig.series(asset, "power_kw")
        for name, asset in [
            ("grid", "grid"),
            ("pv", "pv-roof"),
            ("bat", "battery"),
            ("gen", "gas-peaker"),
        ]
        + [(ld, ld) for ld in LOADS]
    }
    residual = []
    for i, grid in enumerate(series["grid"]):
        load = sum(series[ld][i] for ld in LOADS)
        expected = load - series["pv"][i] - series["bat"][i] - series["gen"][i]
        residual.append(grid - expected)
    return residual


def test_false_data_injection_breaks_the_meter_balance(rig: Rig) -> None:
    run(
        rig,
        Fault(kind="false_data_injection", device="meter-1", quantity="power_kw", magnitude=-10.0),
    )
    residual = balance_residual(rig)
    assert residual[:5] == pytest.approx([0.0] * 5, abs=1e-2)
    assert residual[5:] == pytest.approx([-10.0] * 10, abs=1e-2)


def test_fault_for_s_clears_by_itself(rig: Rig) -> None:
    rig.steps(2)
    rig.sim.inject(Fault(kind="inverter_trip", device="pv-inv-1", for_s=180))
    rig.steps(6)
    power = rig.series("pv-roof", "power_kw")
    # Injected at t; steps at t+60 and t+120 are tripped, at t+180 it has cleared.
    assert power[2:4] == [0.0, 0.0] and min(power[:2] + power[4:]) > 1.0


def test_fault_sent_over_mqtt_reaches_the_running_simulator(rig: Rig, mosquitto) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    fault = Fault(kind="voltage_sag", device="meter-1", magnitude=0.3)
    client.publish(fault_topic(rig.name), fault_message(fault), qos=1).wait_for_publish(5)
    wait_until(lambda: rig.sim.active_faults() == [fault], 5, "fault received")
    clear = {"v": 1, "action": "clear", "kind": "voltage_sag"}
    client.publish(fault_topic(rig.name), json.dumps(clear), qos=1).wait_for_publish(5)
    wait_until(lambda: rig.sim.active_faults() == [], 5, "fault cleared")
    client.loop_stop()
    client.disconnect()


def test_scenario_file_schedules_faults(site, tmp_path: Path) -> None:
    path = tmp_path / "storm.toml"
    path.write_text(
        'name = "storm"\n[[faults]]\nat_s = 120\nkind = "pv_shading"\ndevice = "pv-inv-1"\n'
        "magnitude = 0.5\nfor_s = 120\n"
    )
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, scenario=load_scenario(path), interval_s=60)
    shading = []
    for _ in range(6):
        sim.step()
        shading.append(sim.twins["pv-inv-1"].shading_fraction)
        clock.advance(60)
    assert shading == [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]


def test_bad_faults_are_refused_naming_the_field(site, tmp_path: Path) -> None:
    sim = SiteSimulator(site, SimClock(start=NOON), None)
    with pytest.raises(ConfigError, match=r"fault\.device = 'nope'"):
        sim.inject(Fault(kind="stuck_sensor", device="nope"))
    with pytest.raises(ConfigError, match="needs a battery_inverter device"):
        sim.inject(Fault(kind="soc_bias", device="pv-inv-1"))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[faults]]\nat_s = -1\nkind = "melt"\ndevice = "x"\n')
    with pytest.raises(ConfigError, match=r"faults\[0\]\.(kind|at_s)"):
        load_scenario(bad)
