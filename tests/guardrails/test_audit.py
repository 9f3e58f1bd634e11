"""`audit verify` finds every kind of tampering, one test each."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardrails.audit import AuditEntry, AuditLog

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.db")
    for i in range(5):
        audit.append(
            AuditEntry(
                time=T0 + timedelta(minutes=i),
                principal="agent",
                role="agent",
                action="toggle_relay",
                arguments={"asset": "ev-chargers", "on": i % 2 == 0},
                outcome="executed" if i != 2 else "refused",
                detail=f"request {i}",
            )
        )
    return audit


def tamper(log: AuditLog, *statements: str) -> None:
    """What someone with the database file (but not gridpilot) could do."""
    db = sqlite3.connect(log.path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def test_an_untouched_log_verifies(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok and report.records == 5 and report.problems == []


def test_gridpilot_itself_cannot_update_or_delete(log: AuditLog) -> None:
    db = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET body = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 1")
    db.close()


def test_verify_detects_an_edited_record(log: AuditLog) -> None:
    tamper(
        log, "UPDATE audit SET body = replace(body, '\"refused\"', '\"executed\"') WHERE seq = 3"
    )
    report = log.verify()
    assert not report.ok
    assert report.problems == ["record 3: content does not match its hash (edited)"]


def test_verify_detects_a_deleted_record(log: AuditLog) -> None:
    tamper(log, "DELETE FROM audit WHERE seq = 2")
    report = log.verify()
    assert not report.ok
    assert any(p.startswith("record 3: expected sequence number 2") for p in report.problems)
    assert any("record 3: does not follow" in p for p in report.problems)


def test_verify_detects_reordered_records(log: AuditLog) -> None:
    tamper(
        log,
        "UPDATE audit SET seq = 100 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 4",
        "UPDATE audit SET seq = 4 WHERE seq = 100",
    )
    report = log.verify()
    assert not report.ok
    assert any("record 2" in p for p in report.problems)


def test_verify_detects_a_truncated_tail(log: AuditLog) -> None:
    tamper(log, "DELETE FROM audit WHERE seq >= 4")
    report = log.verify()
    assert not report.ok
    assert report.problems == [
        "log ends at record 3 but the head says record 5 (truncated or rewritten tail)"
    ]


def test_a_rehashed_forgery_is_caught_by_the_head(log: AuditLog, tmp_path: Path) -> None:
    # Rebuild the whole chain after an edit, as a careful forger would: the table is
    # self-consistent again, but the head kept outside it is not.
    forged = AuditLog(tmp_path / "forged.db")
    for record in log.tail(5):
        entry = AuditEntry.model_validate(record.model_dump(exclude={"seq", "prev_hash", "hash"}))
        if record.seq == 3:
            entry = entry.model_copy(update={"outcome": "executed"})
        forged.append(entry)
    tamper(
        log,
        "DELETE FROM audit",
        f"ATTACH '{forged.path}' AS f",
        "INSERT INTO audit SELECT * FROM f.audit",
    )
    report = log.verify()
    assert not report.ok
    assert any("head" in p for p in report.problems)


def test_query_filters_and_export(log: AuditLog) -> None:
    assert [r.seq for r in log.query(outcome="refused")] == [3]
    assert [r.seq for r in log.query(since=T0 + timedelta(minutes=3))] == [4, 5]
    assert log.query(principal="someone-else") == []
    lines = list(log.export_jsonl())
    assert len(lines) == 5 and '"seq":1' in lines[0]
    assert log.tail(2)[-1].detail == "request 4"
