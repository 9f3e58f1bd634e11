"""`gridpilot demo` as a user runs it: everything starts, serves MCP and plans."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.mcp_server.conftest import site_file_for
from tests.services.process import free_port


def test_demo_starts_the_site_serves_mcp_and_makes_a_plan(tmp_path: Path) -> None:
    site_file = site_file_for(tmp_path, "embedded")
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grid",
            "demo",
            "--site",
            str(site_file),
            "--port",
            str(port),
            "--seconds",
            "20",
            "--speed",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"http://127.0.0.1:{port}/mcp" in out
    assert "demo-operator-token" in out
    assert "plan plan-" in out and "no control" in out
    # the empty store got a week of history, so the plan sees a real load to plan for
    assert re.search(r"wrote\s+7\s+days\s+of\s+simulated\s+history", out), out
    peak = re.search(r"Peak\s+import\s+([0-9.]+)\s+kW", out)
    assert peak and float(peak.group(1)) > 1.0, out
    assert "grid" in out and "battery" in out
    assert (tmp_path / "gridpilot.db").exists()
    assert "daemons running: grid-response, arbitrage, peak-shaving" in out
    # the daemons acted through the server under their own names: the audit says so
    tail = subprocess.run(
        [sys.executable, "-m", "grid", "audit", "tail", "-n", "200", "--site", str(site_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert tail.returncode == 0, tail.stderr
    assert "arbitrage (agent)" in tail.stdout, tail.stdout
    assert re.search(r"arbitrage \(agent\)\s+│ dispatch\s+│ executed", tail.stdout), tail.stdout
