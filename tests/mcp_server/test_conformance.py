"""The official MCP conformance suite (npm) against the HTTP endpoint: every scenario
that applies to a server without the suite's own fixture tools passes. The script
lists the ones that do not apply, with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services.process import require_binary

SCRIPT = Path(__file__).parents[2] / "scripts" / "mcp_conformance.py"


def test_the_conformance_suite_passes_every_applicable_scenario() -> None:
    require_binary("npx")  # Node 22 itself is installed by the script when missing
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.endswith("applicable, 0 failed") and not summary.startswith("0 ")
    for scenario in (
        "server-initialize",
        "tools-list",
        "tools-call-error",
        "ping",
        "dns-rebinding-protection",
        "prompts-list",
        "resources-list",
    ):
        assert f"{scenario:32} passed" in result.stdout, scenario
