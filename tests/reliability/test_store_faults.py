"""Store faults with real Mosquitto, influxd and SQLite: nothing dropped, nothing twice.

Stores overwrite a point with the same series and time, so a replayed batch is
harmless; what these tests count is that every point sent arrives."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from grid.store import open_store
from grid.store.sqlite import SQLiteStore
from tests.edge.conftest import make_rig
from tests.reliability.gateway_process import GatewayProcess, Meter, settle
from tests.services.process import wait_until

# Each pair breaks the store as a full disk (a page quota at the current size gives
# SQLITE_FULL) or a read-only file would (SQLITE_READONLY), then mends it.
SQLITE_FAULTS = {
    "full disk": (
        lambda db: db.execute(
            f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}"
        ),
        lambda db: db.execute("PRAGMA max_page_count=1073741823"),
    ),
    "read-only file": (
        lambda db: db.execute("PRAGMA query_only=1"),
        lambda db: db.execute("PRAGMA query_only=0"),
    ),
}


@pytest.mark.parametrize("fault", list(SQLITE_FAULTS))
def test_failing_sqlite_spools_and_replays_every_point(
    site, mosquitto, tmp_path: Path, fault: str
) -> None:
    store = SQLiteStore(tmp_path / "full.db")
    rig = make_rig(site, mosquitto.url, store)
    breaks, mends = SQLITE_FAULTS[fault]
    try:
        rig.steps(2)
        breaks(store._db)
        rig.steps(5)
        assert store.pending_points() > 0  # spooled, not dropped
        assert len(rig.series("grid", "power_kw")) < 7
        mends(store._db)
        rig.steps(1)
        assert store.pending_points() == 0
        assert len(rig.series("grid", "power_kw")) == 8
        assert rig.gateway.stats.store_errors == 0
    finally:
        rig.sim.stop()
        rig.gateway.stop()
        store.close()


def test_gateway_started_while_influx_is_down_spools_then_creates_and_delivers(
    site, mosquitto, own_influxd, tmp_path: Path
) -> None:
    own_influxd.stop()
    store = open_store(own_influxd.url("late"), spool_dir=tmp_path / "spool")  # ?create=1
    rig = make_rig(site, mosquitto.url, store)
    try:
        rig.steps(3)
        assert store.pending_points() > 0
        own_influxd.start()
        rig.steps(1)
        assert store.flush()
        assert len(rig.series("grid", "power_kw")) == 4
    finally:
        rig.sim.stop()
        rig.gateway.stop()
        store.close()


def test_sigterm_flushes_what_the_gateway_holds(mosquitto, tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/term.db")
    gateway.start()
    meter = Meter(mosquitto.port)
    try:
        meter.send(30)
        wait_until(lambda: gateway.journaled() == 30, 10, "30 messages received")
        assert gateway.signal(signal.SIGTERM) == 0
    finally:
        meter.close()
        gateway.stop()
    store = SQLiteStore(tmp_path / "term.db")
    assert len(store.query("riverside-depot", "grid", "power_kw", *meter.window)) == 30
    assert gateway.journaled() == 0
    store.close()


def test_gateway_killed_during_an_influx_outage_delivers_every_point_after_restart(
    mosquitto, own_influxd, tmp_path: Path
) -> None:
    gateway = GatewayProcess(tmp_path, mosquitto.url, own_influxd.url("kill"))
    gateway.start()
    meter = Meter(mosquitto.port)
    try:
        meter.send(50)
        own_influxd.stop()  # the outage
        meter.send(100)
        settle(0.5)  # part in the spool, part in the gateway's batch
        assert gateway.signal(signal.SIGKILL) == -signal.SIGKILL
        meter.send(50)  # queued by the broker for the gateway's session
        own_influxd.start()
        gateway.start()
        store = open_store(own_influxd.url("kill"), spool_dir=tmp_path / "reader")

        def arrived() -> int:
            return len(store.query("riverside-depot", "grid", "power_kw", *meter.window))

        wait_until(lambda: arrived() == 200, 30, "all 200 points in InfluxDB")
        assert gateway.signal(signal.SIGTERM) == 0
        assert arrived() == 200
        store.close()
    finally:
        meter.close()
        gateway.stop()
