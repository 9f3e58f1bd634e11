"""InfluxDB going away mid-write loses nothing and writes nothing twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grid.store.influx import InfluxStore
from grid.telemetry import Measurement

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def batch(start: int, size: int) -> list[Measurement]:
    return [
        Measurement(
            site="depot",
            asset="meter-1",
            quantity="import_kw",
            unit="kW",
            value=float(i),
            time=T0 + timedelta(seconds=i),
        )
        for i in range(start, start + size)
    ]


def test_points_written_across_an_influxd_restart_arrive_exactly_once(
    own_influxd, tmp_path: Path
) -> None:
    store = InfluxStore.from_url(own_influxd.url("outage"), spool_dir=tmp_path / "spool")
    store._retry_s = 0.05  # retry quickly so the test does not wait on back-off
    size, batches = 50, 60
    stopped, restarted = threading.Event(), threading.Event()

    def writer() -> None:
        for n in range(batches):
            store.write(batch(n * size, size))
            if n == 15:
                stopped.wait(timeout=30)
            if n == 40:
                restarted.wait(timeout=60)

    thread = threading.Thread(target=writer)
    thread.start()
    own_influxd.stop()
    stopped.set()
    # Batches 16..40 are written while influxd is down: they must be spooled.
    while store.pending_points() == 0 and thread.is_alive():
        thread.join(timeout=0.01)
    buffered_while_down = store.pending_points()
    own_influxd.start()
    restarted.set()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert store.flush()

    assert buffered_while_down > 0
    assert store.pending_points() == 0
    assert store.rejected_batches() == 0
    got = store.query("depot", "meter-1", "import_kw", T0, T0 + timedelta(days=1))
    assert [s.value for s in got] == [float(i) for i in range(size * batches)]
    counts = store.query(
        "depot",
        "meter-1",
        "import_kw",
        T0,
        T0 + timedelta(days=1),
        window_s=86_400,
        aggregate="count",
    )
    assert counts[0].value == size * batches
    store.close()


def test_spooled_points_survive_a_gridpilot_restart(own_influxd, tmp_path: Path) -> None:
    url = own_influxd.url("restart")
    own_influxd.stop()
    first = InfluxStore.from_url(url.replace("?create=1", ""), spool_dir=tmp_path)
    first.write(batch(0, 10))
    assert first.pending_points() == 10
    first.close()  # gridpilot stops while the database is still down

    own_influxd.start()
    second = InfluxStore.from_url(url, spool_dir=tmp_path)
    assert second.pending_points() == 10
    assert second.flush()
    got = second.query("depot", "meter-1", "import_kw", T0, T0 + timedelta(hours=1))
    assert [s.value for s in got] == [float(i) for i in range(10)]
    second.close()


def test_a_batch_the_database_refuses_is_kept_aside_not_retried_forever(
    influxd, tmp_path: Path
) -> None:
    store = InfluxStore.from_url(influxd.url("refuse"), spool_dir=tmp_path)
    store._spool.append("not line protocol at all", 1)
    assert store.flush()
    assert store.rejected_batches() == 1
    store.write(batch(0, 3))
    assert store.pending_points() == 0
    store.close()
