"""The simulated site without a broker: determinism, the meter balance, relay
gating, and the grid's answer to a sudden change in net load."""

from __future__ import annotations

import time

import pytest

from edge.sim import SiteSimulator
from grid.clock import SimClock
from grid.config import SiteConfig
from grid.profiles import generate
from tests.edge.conftest import NOON


def day(site: SiteConfig, seed: int, steps: int = 30) -> list[dict[str, dict[str, float]]]:
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, seed=seed, interval_s=300)
    out = []
    for _ in range(steps):
        out.append(sim.step())
        clock.advance(300)
    return out


def test_same_seed_same_site_same_readings(site: SiteConfig) -> None:
    assert day(site, seed=5) == day(site, seed=5)
    assert day(site, seed=5) != day(site, seed=6)


def test_meter_reads_load_minus_pv_battery_and_peaker(site: SiteConfig) -> None:
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, interval_s=60)
    sim.twins["bess-1"].setpoint_kw = 7.0
    for _ in range(10):
        clock.advance(60)
        r = sim.step()
        load = sum(r["relay-board-1"][f"ch{c}_power_kw"] for c in range(1, 5))
        expected = (
            load - r["pv-inv-1"]["power_kw"] - r["bess-1"]["power_kw"] - r["peaker-1"]["power_kw"]
        )
        assert r["meter-1"]["power_kw"] == pytest.approx(expected, abs=1e-3)
        assert r["bess-1"]["power_kw"] == 7.0


def test_pv_and_load_come_from_the_site_profiles(site: SiteConfig) -> None:
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, seed=2, interval_s=60)
    profiles = generate(site, NOON, 5, step_s=60, seed=2)
    for i in range(5):
        r = sim.step()
        assert r["pv-inv-1"]["power_kw"] == pytest.approx(profiles.pv_kw["pv-roof"][i], abs=1e-4)
        assert r["relay-board-1"]["ch1_power_kw"] == pytest.approx(
            profiles.load_kw["server-room"][i], abs=1e-4
        )
        assert r["meter-1"]["import_price_eur_per_kwh"] == profiles.import_price_eur_per_kwh[i]
        clock.advance(60)


def test_open_relay_draws_nothing(site: SiteConfig) -> None:
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, interval_s=60)
    r = sim.step()
    # Boots in safe_state [on, on, off, off].
    assert r["relay-board-1"]["ch3_relay_on"] == 0 and r["relay-board-1"]["ch3_power_kw"] == 0.0
    assert r["relay-board-1"]["ch3_current_a"] == 0.0
    assert r["relay-board-1"]["ch1_current_a"] == pytest.approx(
        r["relay-board-1"]["ch1_power_kw"] * 1000 / r["relay-board-1"]["supply_voltage_v"],
        abs=1e-2,
    )


def test_frequency_dips_when_net_load_jumps_and_recovers(site: SiteConfig) -> None:
    clock = SimClock(start=NOON)
    sim = SiteSimulator(site, clock, None, interval_s=5)
    board = sim.twins["relay-board-1"]
    steady = []
    for _ in range(10):
        clock.advance(5)
        steady.append(sim.step()["meter-1"]["frequency_hz"])
    # EV chargers and HVAC switch in while the battery starts charging flat out.
    board.relays = [True, True, True, True]
    sim.twins["bess-1"].setpoint_kw = -25.0
    clock.advance(5)
    dip = sim.step()["meter-1"]["frequency_hz"]
    noise_hz = max(abs(f - 50.0) for f in steady)
    assert 50.0 - dip > 2 * noise_hz
    after = []
    for _ in range(20):
        clock.advance(5)
        after.append(sim.step()["meter-1"]["frequency_hz"])
    assert max(abs(f - 50.0) for f in after[-5:]) < 50.0 - dip


def test_thread_runs_steps_on_an_accelerated_clock(site: SiteConfig) -> None:
    clock = SimClock(start=NOON, speed=600.0)
    sim = SiteSimulator(site, clock, None, interval_s=5)
    sim.start()
    try:
        deadline = time.monotonic() + 20
        while sim.steps < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sim.stop()
    assert sim.steps >= 10
