"""SQLite keeps new points in a time-ordered table and merges them into the
series-ordered one; nothing may be lost, doubled or reordered on the way."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grid.store.sqlite import SQLiteStore
from grid.telemetry import Measurement

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def point(asset: str, seconds: int, value: float) -> Measurement:
    return Measurement(
        site="depot",
        asset=asset,
        quantity="power_kw",
        unit="kW",
        value=value,
        time=T0 + timedelta(seconds=seconds),
    )


def rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def test_a_rewrite_of_a_merged_point_replaces_it_in_reads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db", merge_rows=4)
    store.write([point("a", s, 1.0) for s in range(4)])  # reaches merge_rows: merged
    store.write([point("a", 2, 9.0), point("a", 4, 4.0), point("b", 1, 7.0)])
    assert rows(tmp_path / "t.db", "telemetry") == 4
    assert rows(tmp_path / "t.db", "telemetry_recent") == 3
    got = store.query("depot", "a", "power_kw", T0, T0 + timedelta(minutes=1))
    assert [(int((s.time - T0).total_seconds()), s.value) for s in got] == [
        (0, 1.0),
        (1, 1.0),
        (2, 9.0),
        (3, 1.0),
        (4, 4.0),
    ]
    total = store.query("depot", "a", "power_kw", T0, T0 + timedelta(minutes=1), 60, "sum")
    assert [s.value for s in total] == [16.0]
    newest = {(m.asset, m.time, m.value) for m in store.latest("depot")}
    assert newest == {("a", T0 + timedelta(seconds=4), 4.0), ("b", T0 + timedelta(seconds=1), 7.0)}
    store.close()


def test_a_store_written_before_the_recent_table_opens_and_takes_writes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE telemetry (
            site TEXT NOT NULL, asset TEXT NOT NULL, quantity TEXT NOT NULL,
            t_ns INTEGER NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL,
            quality TEXT NOT NULL, PRIMARY KEY (site, asset, quantity, t_ns)
        ) WITHOUT ROWID;
        """
    )
    t0_ns = int(T0.timestamp()) * 1_000_000_000
    old.execute("INSERT INTO telemetry VALUES ('depot','a','power_kw',?,5.0,'kW','good')", (t0_ns,))
    old.commit()
    old.close()

    store = SQLiteStore(path)
    store.write([point("a", 0, 6.0), point("a", 1, 7.0)])
    got = store.query("depot", "a", "power_kw", T0, T0 + timedelta(minutes=1))
    assert [s.value for s in got] == [6.0, 7.0]
    store.close()
    reopened = SQLiteStore(path, merge_rows=1)
    reopened.write([point("a", 2, 8.0)])  # merges everything pending
    assert rows(path, "telemetry_recent") == 0
    got = reopened.query("depot", "a", "power_kw", T0, T0 + timedelta(minutes=1))
    assert [s.value for s in got] == [6.0, 7.0, 8.0]
    reopened.close()
