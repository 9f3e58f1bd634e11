"""Only the Actuator sends commands, and only the gateway publishes them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
ROOMS = [
    "grid",
    "edge",
    "forecasting",
    "optimization",
    "guardrails",
    "tools",
    "mcp_server",
    "prompts",
    "agents",
    "dashboard",
]


def modules() -> list[tuple[str, ast.Module]]:
    out = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            out.append((str(path.relative_to(ROOT)), ast.parse(path.read_text())))
    return out


def calls_to(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
    ]


def builds_cmd_topic(call: ast.Call) -> bool:
    """A `topic(..., "cmd")` or `self.topic("cmd")` call among the publish arguments."""
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and node.value == "cmd":
            return True
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (node.value.endswith("/cmd"))
        ):
            return True
    return False


def test_only_the_gateway_publishes_to_command_topics() -> None:
    publishers = {
        name
        for name, tree in modules()
        for call in calls_to(tree, "publish")
        if builds_cmd_topic(call)
    }
    assert publishers == {"edge/gateway.py"}


def test_only_the_actuator_asks_the_gateway_to_send_commands() -> None:
    callers = {name for name, tree in modules() for _ in calls_to(tree, "send_command")}
    assert callers == {"guardrails/actuator.py"}


def test_the_tools_and_the_server_reach_devices_only_through_the_actuator() -> None:
    for name, tree in modules():
        if not name.startswith(("tools/", "mcp_server/", "agents/")):
            continue
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not any(m.startswith(("edge.gateway", "paho")) for m in imported), name
