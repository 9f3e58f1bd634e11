"""`gridpilot tool list|call` as a script uses it, against the HTTP endpoint."""

from __future__ import annotations

import json
import subprocess
import sys


def gridpilot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grid", *args], capture_output=True, text=True, timeout=120
    )


def test_tool_call_prints_structured_json(endpoint: str) -> None:
    result = gridpilot("tool", "call", "ping", "--url", endpoint, "--token", "demo-viewer-token")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["principal"] == "viewer"


def test_tool_list_shows_every_tool_and_its_kind(endpoint: str) -> None:
    result = gridpilot("tool", "list", "--url", endpoint, "--token", "demo-viewer-token")
    assert result.returncode == 0, result.stderr
    assert "toggle_relay" in result.stdout and "destructive" in result.stdout


def test_a_refusal_exits_1_with_the_rule_and_the_asset(endpoint: str) -> None:
    result = gridpilot(
        "tool",
        "call",
        "toggle_relay",
        "load=server-room",
        "on=false",
        "reason=shed it",
        "--url",
        endpoint,
        "--token",
        "demo-agent-token",
    )
    assert result.returncode == 1
    assert "Refused by rule 'critical_load'" in result.stderr
    assert "[server-room]" in result.stderr  # printed as text, not taken for markup


def test_a_wrong_token_is_named_as_such(endpoint: str) -> None:
    result = gridpilot("tool", "list", "--url", endpoint, "--token", "not-a-token")
    assert result.returncode == 1
    assert "refused the bearer token (401)" in result.stderr
    assert "Traceback" not in result.stderr
