"""`audit verify` against every way someone with write access to the log's folder
(but not to the anchor) could change history, and two processes appending at once."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guardrails.audit import AuditEntry, AuditLog
from guardrails.cli import audit_app
from tests.mcp_server.conftest import site_file_for

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def entry(i: int, outcome: str = "refused") -> AuditEntry:
    return AuditEntry(
        time=T0 + timedelta(minutes=i),
        principal="agent",
        role="agent",
        action="toggle_relay",
        arguments={"asset": "ev-chargers", "on": i % 2 == 0},
        outcome=outcome,  # type: ignore[arg-type]
        detail=f"request {i}",
    )


def sql(*statements: str) -> Callable[[Path, Path], None]:
    def run(db_path: Path, _anchor: Path) -> None:
        db = sqlite3.connect(db_path)
        db.execute("DROP TRIGGER IF EXISTS audit_no_update")
        db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()

    return run


def rebuilt(change: Callable[[list[AuditEntry]], list[AuditEntry]]) -> Callable:
    """A careful forger: a fresh, self-consistent chain (own anchor) in the log's place."""

    def run(db_path: Path, _anchor: Path) -> None:
        original = AuditLog(db_path, anchor_dir=db_path.parent / "scratch-a")
        entries = [
            AuditEntry.model_validate(r.model_dump(exclude={"seq", "prev_hash", "hash"}))
            for r in original.tail(100)
        ]
        original.close()
        forged_path = db_path.parent / "forged.db"
        forged = AuditLog(forged_path, anchor_dir=db_path.parent / "scratch-b")
        for e in change(entries):
            forged.append(e)
        forged.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        shutil.copy(forged_path, db_path)

    return run


def head(text: str | None) -> Callable[[Path, Path], None]:
    def run(db_path: Path, anchor: Path) -> None:
        path = anchor / f"{db_path.name}.head"
        if text is None:
            path.unlink()
        else:
            path.write_text(text)

    return run


def wiped(db_path: Path, _anchor: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.write_bytes(b"")


def flipped(db_path: Path, _anchor: Path) -> None:
    sql("UPDATE audit SET body = replace(body, 'refused', 'executed') WHERE seq = 2")(
        db_path, _anchor
    )


TAMPERING = {
    "edit a record": flipped,
    "edit a stored hash": sql("UPDATE audit SET hash = '" + "a" * 64 + "' WHERE seq = 2"),
    "delete a record": sql("DELETE FROM audit WHERE seq = 3"),
    "truncate the tail": sql("DELETE FROM audit WHERE seq > 4"),
    "delete every record": sql("DELETE FROM audit"),
    "reorder two records": sql(
        "UPDATE audit SET seq = 100 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 100",
    ),
    "append a forged record": sql(
        "INSERT INTO audit SELECT seq + 1, body, hash, hash FROM audit WHERE seq = 6"
    ),
    "rebuild the chain with one outcome changed": rebuilt(
        lambda es: [e.model_copy(update={"outcome": "executed"}) for e in es]
    ),
    "rebuild the chain one record shorter": rebuilt(lambda es: es[:-1]),
    "rebuild the chain one record longer": rebuilt(lambda es: [*es, entry(99, "executed")]),
    "rebuild the chain in another order": rebuilt(lambda es: list(reversed(es))),
    "wipe the database file": wiped,
    "rewrite the head": head("6 " + "b" * 64 + "\n"),
    "point the head at a shorter log": head("4 0000\n"),
    "garble the head": head("not a head"),
    "remove the head": head(None),
}


@pytest.fixture
def audit_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    anchor = tmp_path / "anchor-elsewhere"
    monkeypatch.setenv("GRIDPILOT_AUDIT_ANCHOR", str(anchor))
    site = site_file_for(tmp_path, "embedded")
    log = AuditLog(tmp_path / "state" / "audit.db")
    for i in range(6):
        log.append(entry(i, "refused" if i % 2 else "executed"))
    log.close()
    return site, tmp_path / "state" / "audit.db", anchor


def verify(site: Path) -> tuple[int, str]:
    result = CliRunner().invoke(audit_app, ["verify", "--site", str(site)])
    return result.exit_code, result.output


def test_an_untouched_log_verifies_with_its_head_apart(audit_site) -> None:
    site, db_path, anchor = audit_site
    assert verify(site)[0] == 0
    assert (anchor / "audit.db.head").exists()
    assert not (db_path.parent / "audit.db.head").exists()


@pytest.mark.parametrize("how", list(TAMPERING))
def test_every_tampering_fails_verify(audit_site, how: str) -> None:
    site, db_path, anchor = audit_site
    TAMPERING[how](db_path, anchor)
    code, output = verify(site)
    assert code == 1, f"{how}: verify passed\n{output}"
    assert "TAMPERED" in output
    assert "Traceback" not in output


_APPENDER = """
import sys
from datetime import UTC, datetime
from guardrails.audit import AuditEntry, AuditLog
log = AuditLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    log.append(AuditEntry(time=datetime.now(UTC), principal=sys.argv[2], role="agent",
                          action="toggle_relay", outcome="refused", detail=str(i)))
log.close()
"""


def test_two_processes_appending_at_once_keep_the_chain_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDPILOT_AUDIT_ANCHOR", str(tmp_path / "anchor"))
    path = tmp_path / "audit.db"
    AuditLog(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(path), f"p{n}", "150"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    log = AuditLog(path)
    report = log.verify()
    assert report.ok, report.problems
    assert report.records == 300
    assert {r.principal for r in log.tail(300)} == {"p0", "p1"}
