"""Requests whose commands were sent but not yet settled, kept on disk.

Written before the first command leaves and removed once the audit record is
written. Whatever is still here after a crash is reconciled from device state on
restart, never re-sent: a command may already have acted, and acting twice is
worse than asking the device what it did.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from grid.store.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (request_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settled (request_id TEXT PRIMARY KEY, audit_seq INTEGER NOT NULL);
"""


class PendingRequest(BaseModel):
    request_id: str
    entry: dict[str, Any]  # the AuditEntry as it would have been written, outcome aside
    commands: list[dict[str, Any]]  # the Commands sent (or about to be)


class PendingBook:
    def __init__(self, path: Path) -> None:
        self._db = open_db(path, _SCHEMA, durable=True)
        self._lock = threading.Lock()

    def add(self, pending: PendingRequest) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO pending VALUES (?, ?)", (pending.request_id, pending.model_dump_json())
            )

    def settle(self, request_id: str, audit_seq: int) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM pending WHERE request_id=?", (request_id,))
            self._db.execute(
                "INSERT OR REPLACE INTO settled VALUES (?, ?)", (request_id, audit_seq)
            )
            self._db.execute("COMMIT")

    def settled_seq(self, request_id: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT audit_seq FROM settled WHERE request_id=?", (request_id,)
            ).fetchone()
        return row[0] if row else None

    def is_pending(self, request_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM pending WHERE request_id=?", (request_id,)
                ).fetchone()
                is not None
            )

    def all(self) -> list[PendingRequest]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM pending ORDER BY rowid").fetchall()
        return [PendingRequest.model_validate(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
