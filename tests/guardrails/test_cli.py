"""`gridpilot audit` for the reviewer: tail, show, verify (and its exit code)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from guardrails.audit import AuditEntry, AuditLog
from tests.mcp_server.conftest import site_file_for


def gridpilot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grid", *args], capture_output=True, text=True, timeout=120
    )


def test_audit_commands_read_and_verify_the_log(tmp_path: Path) -> None:
    site_file = site_file_for(tmp_path, "embedded")
    log = AuditLog(tmp_path / "state" / "audit.db")
    for n in range(3):
        log.append(
            AuditEntry(
                time=datetime(2026, 5, 4, 8, n, tzinfo=UTC),
                principal="agent",
                role="agent",
                action="toggle_relay",
                outcome="refused",
                detail=f"refused by rule 'relay_dwell': case {n}",
            )
        )
    log.close()
    tail = gridpilot("audit", "tail", "--site", str(site_file))
    assert tail.returncode == 0 and "toggle_relay" in tail.stdout and "refused" in tail.stdout
    show = gridpilot("audit", "show", "2", "--site", str(site_file))
    assert '"seq": 2' in show.stdout and "case 1" in show.stdout
    ok = gridpilot("audit", "verify", "--site", str(site_file))
    assert ok.returncode == 0 and "3 records, chain intact" in ok.stdout

    db = sqlite3.connect(tmp_path / "state" / "audit.db")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET body = replace(body, 'case 1', 'case X') WHERE seq = 2")
    db.commit()
    db.close()
    bad = gridpilot("audit", "verify", "--site", str(site_file))
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stderr and "record 2: content does not match its hash" in bad.stderr
    lines = gridpilot("audit", "export", "--site", str(site_file)).stdout.splitlines()
    assert len(lines) == 3
