"""What a client reads in tools/list: every constrained parameter shows its enum or its
bounds, every tool a title and full annotations, the server its version."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from mcp import Client

from app.runtime import Runtime
from guardrails.principals import Caller
from mcp_server.server import build_server
from tests.mcp_server.scenario import READ_ONLY, TOOLS

# (tool, parameter) -> what its schema must say
ENUMS = {
    ("forecast", "target"): {"load", "pv", "price", "net_load", "net_load_change_30min"},
    ("optimize", "solver"): {"cbc", "highs"},
    ("grid_history", "aggregate"): {"mean", "min", "max", "sum", "first", "last", "count"},
    ("lease", "op"): {"acquire", "release"},
    ("audit_log", "outcome"): {
        "executed",
        "refused",
        "failed",
        "awaiting_confirmation",
        "reconciled",
        "recorded",
    },
}
BOUNDS = {
    ("forecast", "horizon_hours"): {"exclusiveMinimum": 0, "maximum": 24},
    ("optimize", "horizon_hours"): {"exclusiveMinimum": 0, "maximum": 24},
    ("grid_history", "hours"): {"exclusiveMinimum": 0, "maximum": 744},
    ("grid_history", "window_s"): {"minimum": 1, "maximum": 86_400},
    ("set_setpoint", "power_kw"): {"minimum": -100_000, "maximum": 100_000},
    ("lease", "priority"): {"minimum": 0, "maximum": 100},
    ("lease", "duration_s"): {"exclusiveMinimum": 0, "maximum": 86_400},
    ("anomalies", "hours"): {"exclusiveMinimum": 0, "maximum": 744},
    ("audit_log", "limit"): {"minimum": 1, "maximum": 500},
}
LENGTHS = {
    ("toggle_relay", "reason"): (3, 500),
    ("set_setpoint", "reason"): (3, 500),
    ("halt", "reason"): (3, 500),
    ("resume", "reason"): (3, 500),
    ("toggle_relay", "load"): (1, 64),
    ("set_setpoint", "asset"): (1, 64),
    ("lease", "asset"): (1, 64),
    ("lease", "purpose"): (0, 200),
    ("dispatch", "plan_id"): (1, 64),
    ("grid_history", "asset"): (1, 64),
    ("grid_history", "quantity"): (1, 64),
}


def _flat(schema: dict[str, Any]) -> dict[str, Any]:
    """One parameter's schema with `anyOf: [X, null]` unwrapped (optional parameters)."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return {**schema, **_flat(option)}
    return schema


async def _tools(runtime: Runtime, **kwargs: Any) -> dict[str, Any]:
    server = build_server(runtime, Caller(name="admin", role="admin"), **kwargs)
    async with Client(server) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


async def test_every_constrained_parameter_publishes_its_enum_or_bounds(runtime: Runtime) -> None:
    tools = await _tools(runtime)
    for (tool, param), values in ENUMS.items():
        schema = _flat(tools[tool].input_schema["properties"][param])
        assert set(schema["enum"]) == values, (tool, param, schema)
    for (tool, param), bounds in BOUNDS.items():
        schema = _flat(tools[tool].input_schema["properties"][param])
        assert {k: schema.get(k) for k in bounds} == bounds, (tool, param, schema)
    for (tool, param), (least, most) in LENGTHS.items():
        schema = _flat(tools[tool].input_schema["properties"][param])
        assert (schema.get("minLength", 0), schema["maxLength"]) == (least, most), (tool, param)
    weights = _flat(tools["optimize"].input_schema["properties"]["objective_weights"])
    assert set(weights["propertyNames"]["enum"]) >= {"energy", "demand_charge", "fuel"}
    assert weights["additionalProperties"]["maximum"] == 100
    assert tools["toggle_relay"].input_schema["required"] == ["load", "on", "reason"]


async def test_every_tool_has_a_title_full_annotations_and_a_described_parameter(
    runtime: Runtime,
) -> None:
    tools = await _tools(runtime)
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.title, name
        a = tool.annotations
        hints = (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        assert None not in hints, name
        for param, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description") or "$ref" in str(schema), (name, param)


async def test_the_server_reports_the_package_version(runtime: Runtime) -> None:
    server = build_server(runtime, Caller(name="admin", role="admin"))
    async with Client(server) as client:
        info = client.server_info if hasattr(client, "server_info") else None
        assert server.version == version("gridpilot") != ""
        if info is not None:
            assert info.version == version("gridpilot")


async def test_a_read_only_server_offers_only_read_tools(runtime: Runtime) -> None:
    tools = await _tools(runtime, read_only=True)
    assert set(tools) == READ_ONLY
