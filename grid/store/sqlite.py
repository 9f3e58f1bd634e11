"""The embedded store: one SQLite file in WAL mode, safe to share between threads.

Telemetry lives in two tables. `telemetry` is clustered by series and time, which
is what reads want; but a gateway batch holds one point of each of hundreds of
series, and inserting it there dirties one B-tree page per series. So writes go to
`telemetry_recent`, clustered by time, where a batch lands on a few tail pages;
once it holds `merge_rows` points they move to `telemetry` in one sorted pass that
touches each series' page once. Reads look at both, the recent point winning.

A write SQLite cannot take (disk full, file read-only, locked past its timeout)
goes to a `Spool` in another file and is replayed, in order, before the next
write, as the InfluxDB store does with an unreachable server.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from grid.telemetry import (
    Aggregate,
    Event,
    Measurement,
    Quality,
    Sample,
    from_ns,
    to_ns,
)

if TYPE_CHECKING:
    from grid.store.spool import Spool

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry (
    site TEXT NOT NULL, asset TEXT NOT NULL, quantity TEXT NOT NULL,
    t_ns INTEGER NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    PRIMARY KEY (site, asset, quantity, t_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry_recent (
    t_ns INTEGER NOT NULL, site TEXT NOT NULL, asset TEXT NOT NULL, quantity TEXT NOT NULL,
    value REAL NOT NULL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    PRIMARY KEY (t_ns, site, asset, quantity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL, asset TEXT, kind TEXT NOT NULL, severity TEXT NOT NULL,
    t_ns INTEGER NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (site, t_ns);
"""

# SQLite has no first/last aggregate; a bare column beside min()/max() takes its
# value from the row that holds the minimum/maximum, which is exactly first/last.
_AGGREGATES: dict[str, str] = {
    "mean": "AVG(value)",
    "min": "MIN(value)",
    "max": "MAX(value)",
    "sum": "SUM(value)",
    "count": "COUNT(value)",
    "first": "value, MIN(t_ns)",
    "last": "value, MAX(t_ns)",
}

_COLUMNS = "site, asset, quantity, t_ns, value, unit, quality"
# A point of `telemetry` counts unless `telemetry_recent` holds a newer copy of it;
# points older than everything recent skip the probe, so history reads stay fast.
_SERIES = "site=? AND asset=? AND quantity=? AND t_ns>=? AND t_ns<?"
_POINTS = f"""
SELECT t_ns, value FROM telemetry AS m WHERE {_SERIES}
    AND (m.t_ns < (SELECT MIN(t_ns) FROM telemetry_recent) OR NOT EXISTS (
        SELECT 1 FROM telemetry_recent AS r WHERE r.t_ns = m.t_ns AND r.site = m.site
        AND r.asset = m.asset AND r.quantity = m.quantity))
UNION ALL SELECT t_ns, value FROM telemetry_recent WHERE {_SERIES}
"""
# Enough for a sorted merge to touch each of a few thousand series' pages once
# per dozen points, small enough that a scan of the recent table stays a few ms.
MERGE_ROWS = 20_000


def open_db(path: str | Path, schema: str, *, durable: bool) -> sqlite3.Connection:
    """A connection in WAL mode, shareable between threads (callers hold their own lock).
    `durable` syncs every commit to disk, for what must survive a power cut."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    db.executescript(schema)
    return db


class SQLiteStore:
    def __init__(
        self, path: str | Path, spool_path: Path | None = None, merge_rows: int = MERGE_ROWS
    ) -> None:
        self.path = str(path)
        # NORMAL: telemetry lost in a power cut is seconds of readings, not decisions.
        self._db = open_db(self.path, _SCHEMA, durable=False)
        self._lock = threading.Lock()
        self._merge_rows = merge_rows
        (self._recent,) = self._db.execute("SELECT COUNT(*) FROM telemetry_recent").fetchone()
        if spool_path is None:
            spool_path = (
                Path("var/spool/sqlite-memory.db")
                if self.path == ":memory:"
                else Path(self.path).with_name(Path(self.path).name + ".spool")
            )
        self._spool_path = spool_path
        self._spool: Spool | None = None  # opened on the first failed write

    def write(self, points: Sequence[Measurement]) -> None:
        rows = []
        last_time, last_ns = None, 0
        for p in points:
            # Points of one message (or one gateway round) share a time: convert it once.
            if p.time != last_time:
                last_time, last_ns = p.time, to_ns(p.time)
            rows.append((p.site, p.asset, p.quantity, last_ns, p.value, p.unit, p.quality.value))
        if not rows:
            return
        with self._lock:
            if self._replay_locked():
                try:
                    self._insert(rows)
                    return
                except sqlite3.Error as exc:
                    log.warning("SQLite write of %d points failed (%s); spooling", len(rows), exc)
            self._open_spool().append(json.dumps(rows), len(rows))

    def _insert(self, rows: list[tuple]) -> None:
        """Rows are in `_COLUMNS` order, as spooled batches of earlier versions are too."""
        merge = self._recent + len(rows) >= self._merge_rows
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO telemetry_recent ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)", rows
            )
            if merge:
                self._merge()
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._recent = 0 if merge else self._recent + len(rows)

    def _merge(self) -> None:
        """Move the recent points into `telemetry`, in its key order (inside a transaction)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} "
            "FROM telemetry_recent ORDER BY site, asset, quantity, t_ns"
        )
        self._db.execute("DELETE FROM telemetry_recent")

    def _open_spool(self) -> Spool:
        if self._spool is None:
            from grid.store.spool import Spool

            self._spool = Spool(self._spool_path)
        return self._spool

    def _replay_locked(self) -> bool:
        """Replay spooled batches oldest first; True when none is left."""
        if self._spool is None:
            if not self._spool_path.exists():
                return True
            self._open_spool()
        assert self._spool is not None
        while (batch := self._spool.oldest()) is not None:
            batch_id, body = batch
            try:
                self._insert([tuple(row) for row in json.loads(body)])
            except sqlite3.Error:
                return False
            self._spool.remove(batch_id)
        return True

    def flush(self) -> bool:
        """Replay the spool now; True when it is empty afterwards."""
        with self._lock:
            return self._replay_locked()

    def pending_points(self) -> int:
        with self._lock:
            return self._spool.pending_points() if self._spool is not None else 0

    def query(
        self,
        site: str,
        asset: str,
        quantity: str,
        start: datetime,
        end: datetime,
        window_s: int | None = None,
        aggregate: Aggregate = "mean",
    ) -> list[Sample]:
        args = (site, asset, quantity, to_ns(start), to_ns(end)) * 2
        if window_s is None:
            sql = f"SELECT t_ns, value FROM ({_POINTS}) ORDER BY t_ns"
        else:
            width = int(window_s) * 1_000_000_000
            sql = (
                f"SELECT (t_ns / {width}) * {width} AS bucket, {_AGGREGATES[aggregate]} "
                f"FROM ({_POINTS}) GROUP BY bucket ORDER BY bucket"
            )
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Sample(time=from_ns(row[0]), value=float(row[1])) for row in rows]

    def latest(self, site: str, asset: str | None = None) -> list[Measurement]:
        where = "WHERE site=?" + (" AND asset=?" if asset else "") + " GROUP BY asset, quantity"
        args = (site, asset) if asset else (site,)
        newest: dict[tuple[str, str], tuple] = {}
        with self._lock:
            # Older tier first: a recent point at the same time replaces the merged one.
            for table in ("telemetry", "telemetry_recent"):
                sql = f"SELECT site, asset, quantity, value, unit, quality, MAX(t_ns) FROM {table} "
                for r in self._db.execute(sql + where, args):
                    old = newest.get((r[1], r[2]))
                    if old is None or r[6] >= old[6]:
                        newest[(r[1], r[2])] = r
        rows = [newest[k] for k in sorted(newest)]
        return [
            Measurement(
                site=r[0],
                asset=r[1],
                quantity=r[2],
                value=r[3],
                unit=r[4],
                quality=Quality(r[5]),
                time=from_ns(r[6]),
            )
            for r in rows
        ]

    def write_events(self, events: Sequence[Event]) -> None:
        rows = [
            (
                e.site,
                e.asset,
                e.kind,
                e.severity.value,
                to_ns(e.time),
                e.message,
                json.dumps(e.data, default=str),
            )
            for e in events
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO events (site, asset, kind, severity, t_ns, message, data) "
                "VALUES (?,?,?,?,?,?,?)",
                rows,
            )
            self._db.execute("COMMIT")

    def query_events(
        self,
        site: str,
        start: datetime,
        end: datetime,
        kind: str | None = None,
        asset: str | None = None,
    ) -> list[Event]:
        sql = "SELECT site, asset, kind, severity, t_ns, message, data FROM events "
        sql += "WHERE site=? AND t_ns>=? AND t_ns<?"
        args: list = [site, to_ns(start), to_ns(end)]
        if kind is not None:
            sql += " AND kind=?"
            args.append(kind)
        if asset is not None:
            sql += " AND asset=?"
            args.append(asset)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY t_ns, id", args).fetchall()
        return [
            Event(
                site=r[0],
                asset=r[1],
                kind=r[2],
                severity=r[3],
                time=from_ns(r[4]),
                message=r[5],
                data=json.loads(r[6]),
            )
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._spool is not None:
                self._spool.close()
