"""A durable, ordered buffer for writes the database could not take yet.

Each undelivered batch is one row in a small SQLite file, so a crash while the
database is down loses nothing; batches are replayed oldest first and removed only
once delivered. Replaying a batch twice is harmless because a store overwrites a
point with the same series and time.
"""

from __future__ import annotations

import threading
from pathlib import Path

from grid.store.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL, points INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL, reason TEXT NOT NULL);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        # durable: a batch acknowledged as buffered must survive a power cut
        self._db = open_db(path, _SCHEMA, durable=True)
        self._lock = threading.Lock()

    def append(self, body: str, points: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO pending (body, points) VALUES (?, ?)", (body, points))

    def oldest(self) -> tuple[int, str] | None:
        with self._lock:
            return self._db.execute("SELECT id, body FROM pending ORDER BY id LIMIT 1").fetchone()

    def remove(self, batch_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE id=?", (batch_id,))

    def reject(self, batch_id: int, reason: str) -> None:
        """Keep a batch the database refused outright, for a person to look at."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO rejected (body, reason) SELECT body, ? FROM pending WHERE id=?",
                (reason, batch_id),
            )
            self._db.execute("DELETE FROM pending WHERE id=?", (batch_id,))
            self._db.execute("COMMIT")

    def pending_points(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(SUM(points), 0) FROM pending").fetchone()[0]

    def rejected_batches(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
