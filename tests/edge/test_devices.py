"""Device twins: the relay board's revert timer over a real broker, and the physics
and limits of battery, PV and peaker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge.devices import BatteryTwin, PeakerTwin, PVTwin
from edge.sim import SiteSimulator
from grid.clock import SimClock
from tests.edge.conftest import NOON, Rig
from tests.services.process import wait_until


def test_missed_heartbeat_makes_the_board_revert_to_its_safe_state(rig: Rig) -> None:
    board = rig.sim.twins["relay-board-1"]
    for channel in (3, 4):
        cmd = rig.command("relay-board-1", "set_relay", f"on-{channel}", channel=channel, on=True)
        assert rig.gateway.send_command(cmd, 5).result == "ok"
    # Heartbeats every 5 s keep the board as commanded through two revert periods.
    for _ in range(24):
        rig.clock.advance(5)
        wait_until(lambda: rig.clock.time() - board.last_heartbeat_s < 5.5, 5, "heartbeat")
        rig.sim.step()
    assert board.relays == [True, True, True, True] and board.reverts == 0
    rig.gateway.stop()
    for _ in range(13):  # 65 s of silence > revert_s = 60
        rig.clock.advance(5)
        rig.sim.step()
    assert board.relays == [True, True, False, False]  # safe_state of the site file
    assert board.reverted and board.reverts == 1


def test_reverted_state_reaches_the_next_gateway(rig: Rig, site, mosquitto) -> None:
    rig.gateway.stop()
    rig.clock.advance(61)
    rig.sim.step()
    from edge.gateway import Gateway
    from grid.store.sqlite import SQLiteStore

    fresh = Gateway(site, SQLiteStore(":memory:"), rig.clock, mosquitto.url, client_id="gw-2")
    fresh.start()
    try:
        wait_until(lambda: fresh.state.device("relay-board-1").state.get("reverted"), 5, "state")
        assert fresh.state.device("relay-board-1").state["relays"] == [True, True, False, False]
    finally:
        fresh.stop()


@pytest.fixture
def offline_sim(site) -> SiteSimulator:
    return SiteSimulator(site, SimClock(start=NOON), None, interval_s=60)


_ids = iter(range(1_000_000))


def command(sim: SiteSimulator, device: str, action: str, **params: float) -> dict:
    now = sim.clock.now()
    raw = {
        "v": 1,
        "id": f"cmd-{next(_ids)}",
        "device": device,
        "action": action,
        "params": params,
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=1)).isoformat(),
    }
    return sim.twins[device].handle_command(raw, sim.clock.time())


def run(sim: SiteSimulator, minutes: int) -> None:
    for _ in range(minutes):
        sim.clock.advance(60)
        sim.step()


def test_battery_soc_follows_power_through_the_efficiencies(offline_sim: SiteSimulator) -> None:
    battery: BatteryTwin = offline_sim.twins["bess-1"]
    assert command(offline_sim, "bess-1", "set_power", power_kw=-19.0)["result"] == "ok"
    run(offline_sim, 60)
    # One hour charging at 19 kW with 95% efficiency into 50 kWh: +0.361.
    assert battery.soc_fraction == pytest.approx(0.5 + 19 * 0.95 / 50, abs=1e-4)
    assert command(offline_sim, "bess-1", "set_power", power_kw=19.0)["result"] == "ok"
    run(offline_sim, 30)
    assert battery.soc_fraction == pytest.approx(0.861 - 9.5 / 0.95 / 50, abs=1e-3)
    assert battery.soh_fraction < 1.0
    assert battery.temperature_c > 25.0


def test_battery_stops_at_its_soc_window_and_refuses_out_of_range(offline_sim) -> None:
    battery: BatteryTwin = offline_sim.twins["bess-1"]
    ack = command(offline_sim, "bess-1", "set_power", power_kw=-30.0)
    assert ack["result"] == "rejected" and "-25" in ack["detail"]
    command(offline_sim, "bess-1", "set_power", power_kw=25.0)
    run(offline_sim, 120)
    assert battery.soc_fraction == pytest.approx(0.10, abs=1e-6)
    assert battery.power_kw == 0.0


def test_battery_in_peak_shaving_mode_holds_the_grid_import_to_its_cap(offline_sim) -> None:
    meter, battery = offline_sim.twins["meter-1"], offline_sim.twins["bess-1"]
    command(offline_sim, "bess-1", "set_power", power_kw=-20.0)
    run(offline_sim, 2)
    assert battery.power_kw == -20.0 and meter.power_kw > 15.0
    # the same charge under a 10 kW cap: it charges only what keeps import at 10 kW
    ack = command(offline_sim, "bess-1", "set_power", power_kw=-20.0, import_cap_kw=10.0)
    assert ack["result"] == "ok" and "held to 10 kW" in ack["detail"]
    run(offline_sim, 3)
    assert meter.power_kw == pytest.approx(10.0, abs=1e-6)
    assert -20.0 < battery.power_kw < 0.0
    # under a cap below the site's own import it discharges, with a setpoint of zero
    command(offline_sim, "bess-1", "set_power", power_kw=0.0, import_cap_kw=0.5)
    run(offline_sim, 3)
    assert meter.power_kw == pytest.approx(0.5, abs=1e-6) and battery.power_kw > 0.0
    # a plain setpoint leaves the mode
    command(offline_sim, "bess-1", "set_power", power_kw=-20.0)
    run(offline_sim, 1)
    assert battery.power_kw == -20.0 and meter.power_kw > 15.0
    ack = command(offline_sim, "bess-1", "set_power", power_kw=0.0, import_cap_kw=-1.0)
    assert ack["result"] == "rejected" and "import_cap_kw" in ack["detail"]


def test_peak_shaving_stops_at_the_reserve_soc_under_the_import_limit(offline_sim) -> None:
    meter, battery = offline_sim.twins["meter-1"], offline_sim.twins["bess-1"]
    soc = battery.soc_fraction
    ack = command(
        offline_sim,
        "bess-1",
        "set_power",
        power_kw=0.0,
        import_cap_kw=0.5,
        reserve_soc_fraction=round(soc + 0.05, 4),
    )
    assert ack["result"] == "ok" and battery.state()["reserve_soc_fraction"] > soc
    run(offline_sim, 3)
    # under the reserve and under the import limit: no shaving, the cap is given up
    assert battery.power_kw == 0.0 and meter.power_kw > 0.5
    assert battery.soc_fraction == pytest.approx(soc, abs=1e-9)
    command(offline_sim, "bess-1", "set_power", power_kw=0.0, import_cap_kw=0.5)
    run(offline_sim, 3)
    assert battery.power_kw > 0.0 and battery.state()["reserve_soc_fraction"] is None
    # following a planned import above the site's: the planned discharge is given up
    run(offline_sim, 1)
    site_kw = meter.power_kw + battery.power_kw
    ack = command(
        offline_sim,
        "bess-1",
        "set_power",
        power_kw=10.0,
        import_cap_kw=site_kw + 5.0,
        follow_import_kw=site_kw - 2.0,
    )
    assert ack["result"] == "ok" and battery.state()["follow_import_kw"] == site_kw - 2.0
    run(offline_sim, 1)
    assert 0.0 < battery.power_kw < 10.0
    assert meter.power_kw == pytest.approx(site_kw - 2.0, abs=1e-6)
    ack = command(
        offline_sim, "bess-1", "set_power", power_kw=0.0, import_cap_kw=1, reserve_soc_fraction=2
    )
    assert ack["result"] == "rejected" and "reserve_soc_fraction" in ack["detail"]


def test_pv_curtailment_caps_output(offline_sim: SiteSimulator) -> None:
    pv: PVTwin = offline_sim.twins["pv-inv-1"]
    run(offline_sim, 1)
    assert pv.power_kw > 3.0
    assert command(offline_sim, "pv-inv-1", "set_curtailment", limit_kw=2.0)["result"] == "ok"
    run(offline_sim, 1)
    assert pv.power_kw == 2.0
    ack = command(offline_sim, "pv-inv-1", "set_curtailment", limit_kw=21.0)
    assert ack["result"] == "rejected" and "[0, 20]" in ack["detail"]


def test_peaker_starts_after_its_delay_at_minimum_load_and_ramps(offline_sim) -> None:
    peaker: PeakerTwin = offline_sim.twins["peaker-1"]
    assert command(offline_sim, "peaker-1", "set_power", power_kw=5.0)["result"] == "rejected"
    command(offline_sim, "peaker-1", "set_power", power_kw=30.0)
    command(offline_sim, "peaker-1", "start")
    run(offline_sim, 1)
    assert peaker.mode == "starting" and peaker.power_kw == 0.0 and peaker.fuel_kw() > 0
    run(offline_sim, 1)  # startup_delay_s = 120
    assert peaker.mode == "running" and peaker.power_kw == pytest.approx(9.0 + 10.0)
    run(offline_sim, 1)
    assert peaker.power_kw == pytest.approx(29.0)  # ramp 10 kW/min from the 9 kW minimum
    run(offline_sim, 1)
    assert peaker.power_kw == 30.0
    assert peaker.values()["fuel_kw"] > 30.0 / 0.35
    command(offline_sim, "peaker-1", "stop")
    run(offline_sim, 1)
    assert peaker.values() == {"power_kw": 0.0, "setpoint_kw": 30.0, "running": 0.0, "fuel_kw": 0.0}
