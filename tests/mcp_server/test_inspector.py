"""A third-party client, the MCP Inspector CLI (npm), against the HTTP endpoint."""

from __future__ import annotations

import json
import subprocess

from tests.mcp_server.scenario import DESTRUCTIVE, READ_ONLY, TOOLS
from tests.services.process import require_binary

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def inspector(endpoint: str, *args: str) -> dict:
    npx = require_binary("npx")
    result = subprocess.run(
        [
            npx,
            "-y",
            INSPECTOR,
            "--cli",
            endpoint,
            "--header",
            "Authorization: Bearer demo-viewer-token",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_inspector_lists_every_tool_with_its_annotations(endpoint: str) -> None:
    listed = {t["name"]: t for t in inspector(endpoint, "--method", "tools/list")["tools"]}
    assert set(listed) == TOOLS
    for name, tool in listed.items():
        hints = tool["annotations"]
        assert hints["readOnlyHint"] is (name in READ_ONLY), name
        assert hints.get("destructiveHint", False) is (name in DESTRUCTIVE), name
        assert tool["description"] and tool["outputSchema"]["type"] == "object"


def test_inspector_calls_grid_state_and_gets_structured_content(endpoint: str) -> None:
    out = inspector(endpoint, "--method", "tools/call", "--tool-name", "grid_state")
    assert out.get("isError") in (None, False)
    state = out["structuredContent"]
    assert state["site"] == "riverside-depot"
    assert {r["load"] for r in state["relays"]} == {
        "server-room",
        "cold-store",
        "ev-chargers",
        "hvac-office",
    }
