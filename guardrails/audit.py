"""The append-only, hash-chained audit log of every request to act.

Each record carries the hash of the one before, so an edited record breaks its own
hash, a deleted or reordered one breaks the chain, and a truncated, extended or
rebuilt chain no longer ends in the head: the number and hash of the last record,
kept in an anchor directory apart from the log. Someone who can rewrite the log's
folder but not the anchor cannot make a changed history verify. Point
`GRIDPILOT_AUDIT_ANCHOR` at a directory only the gridpilot service may write (its
default, `anchor/` beside the log, guards against accidents, not against the log's
other writers). Triggers refuse UPDATE and DELETE.

Appends are safe from several processes at once: a file lock in the anchor
serializes them, and the head is replaced (under a unique temporary name) while
the record's transaction still holds the database, so heads land in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict

from grid.store.sqlite import open_db
from grid.telemetry import UtcTime

GENESIS = "0" * 64
ANCHOR_ENV = "GRIDPILOT_AUDIT_ANCHOR"

Outcome = Literal[
    "executed",  # every command acknowledged ok
    "refused",  # a guardrail said no; nothing was sent
    "failed",  # sent, but a device rejected it or did not answer
    "awaiting_confirmation",  # a preview and a token were returned; nothing was sent
    "reconciled",  # found pending after a crash and settled from device state
    "recorded",  # a change of guardrail state (halt, resume, lease)
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class AuditEntry(BaseModel):
    """What is written: filled by the Actuator (or the guardrail that changed)."""

    time: UtcTime
    principal: str
    role: str
    action: str
    arguments: dict[str, Any] = {}
    decision: dict[str, Any] = {}  # allowed + every rule evaluated, with numbers
    state_before: dict[str, Any] = {}
    command_ids: list[str] = []
    acks: list[dict[str, Any]] = []
    state_after: dict[str, Any] = {}
    outcome: Outcome
    detail: str = ""


class AuditRecord(AuditEntry):
    model_config = ConfigDict(frozen=True)

    seq: int
    prev_hash: str
    hash: str


class VerifyReport(BaseModel):
    ok: bool
    records: int
    head_hash: str
    problems: list[str]


def _canonical(entry: AuditEntry) -> str:
    return json.dumps(entry.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _chain_hash(seq: int, prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{body}".encode()).hexdigest()


def anchor_dir_for(path: Path) -> Path:
    configured = os.environ.get(ANCHOR_ENV)
    return Path(configured) if configured else path.parent / "anchor"


class AuditLog:
    def __init__(self, path: str | Path, anchor_dir: Path | None = None) -> None:
        """`anchor_dir`: where the head lives (default `$GRIDPILOT_AUDIT_ANCHOR`, else
        `anchor/` beside the log)."""
        self.path = Path(path)
        anchor = anchor_dir or anchor_dir_for(self.path)
        anchor.mkdir(parents=True, exist_ok=True)
        self.head_path = anchor / f"{self.path.name}.head"
        self._lock_path = anchor / f"{self.path.name}.lock"
        self._db = open_db(self.path, _SCHEMA, durable=True)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[IO[str]]:
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, entry: AuditEntry) -> AuditRecord:
        body = _canonical(entry)
        with self._lock, self._process_lock():
            old_head = self._read_head()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = _chain_hash(seq, prev, body)
                self._db.execute(
                    "INSERT INTO audit (seq, body, prev_hash, hash) VALUES (?,?,?,?)",
                    (seq, body, prev, digest),
                )
                # Head first, then commit: a record is never committed without it.
                self._write_head(seq, digest)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                if old_head is not None:
                    self._write_head(*old_head)
                raise
        return AuditRecord(seq=seq, prev_hash=prev, hash=digest, **json.loads(body))

    def _write_head(self, seq: int, digest: str) -> None:
        # Replace atomically, under a name of this write's own: a torn or shared
        # temporary file would look like tampering.
        fd, tmp = tempfile.mkstemp(dir=self.head_path.parent, prefix=".head-")
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{seq} {digest}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.head_path)

    def _read_head(self) -> tuple[int, str] | None:
        try:
            seq, digest = self.head_path.read_text().split()
            return int(seq), digest
        except FileNotFoundError:
            return None
        except ValueError:
            return (-1, "unreadable")

    def _rows(self, sql: str, args: tuple = ()) -> Iterator[AuditRecord]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for seq, body, prev, digest in rows:
            yield AuditRecord(seq=seq, prev_hash=prev, hash=digest, **json.loads(body))

    def get(self, seq: int) -> AuditRecord | None:
        found = list(self._rows("SELECT seq, body, prev_hash, hash FROM audit WHERE seq=?", (seq,)))
        return found[0] if found else None

    def tail(self, n: int = 20) -> list[AuditRecord]:
        rows = self._rows(
            "SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT ?", (n,)
        )
        return list(reversed(list(rows)))

    def query(
        self,
        principal: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        out = []
        for record in self._rows("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq"):
            if principal and record.principal != principal:
                continue
            if since and record.time < since:
                continue
            if outcome and record.outcome != outcome:
                continue
            if action and record.action != action:
                continue
            out.append(record)
        return out[-limit:]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]

    def verify(self) -> VerifyReport:
        """Walk the chain from the start; report every place it does not hold."""
        problems: list[str] = []
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, seq, body, prev_hash, hash FROM audit ORDER BY rowid"
            ).fetchall()
        prev, expected_seq = GENESIS, 1
        for _rowid, seq, body, prev_hash, digest in rows:
            if seq != expected_seq:
                problems.append(
                    f"record {seq}: expected sequence number {expected_seq} "
                    "(a record was deleted, inserted or moved)"
                )
            if prev_hash != prev:
                problems.append(
                    f"record {seq}: does not follow the record before it "
                    "(deleted or reordered records)"
                )
            if _chain_hash(seq, prev_hash, body) != digest:
                problems.append(f"record {seq}: content does not match its hash (edited)")
            prev, expected_seq = digest, seq + 1
        head = self._read_head()
        last_seq = rows[-1][1] if rows else 0
        if head is None:
            if rows:
                problems.append(f"head {self.head_path} missing: cannot rule out a truncated log")
        elif head == (-1, "unreadable"):
            problems.append(f"head {self.head_path} is unreadable (rewritten)")
        elif head != (last_seq, prev):
            problems.append(
                f"log ends at record {last_seq} but the head says record {head[0]} "
                "(truncated or rewritten tail)"
            )
        return VerifyReport(ok=not problems, records=len(rows), head_hash=prev, problems=problems)

    def export_jsonl(self) -> Iterator[str]:
        for record in self._rows("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq"):
            yield record.model_dump_json()

    def close(self) -> None:
        with self._lock:
            self._db.close()
