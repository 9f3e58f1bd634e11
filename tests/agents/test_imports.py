"""Agents reach the site only through MCP: nothing in agents/ imports the rooms below
the server (its guardrails, tools, field side or store)."""

from __future__ import annotations

import ast
from pathlib import Path

AGENTS = Path(__file__).parents[2] / "agents"
FORBIDDEN = ("guardrails", "tools", "edge", "grid.store", "app")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_agents_import_nothing_below_the_mcp_client() -> None:
    files = sorted(AGENTS.rglob("*.py"))
    assert len(files) >= 8
    bad = {
        f"{path.name}: {name}"
        for path in files
        for name in imported(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, sorted(bad)
