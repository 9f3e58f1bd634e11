"""Hypothesis against every MCP tool through the real protocol (in-memory client), as
a viewer and as an agent: no crash, no actuation outside policy, no act unaudited."""

from __future__ import annotations

import math
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from app.runtime import Runtime
from guardrails.principals import Caller
from mcp_server.server import build_server
from tests.reliability.report import examples, record

# Slow by nature (training, solving) and covered by their own tests: not fuzzed here.
SKIP = {"forecast", "optimize"}
CRITICAL = ("server-room", "cold-store")

weird_number = st.sampled_from(
    [0, -1, 1e308, -1e308, 2**63, math.inf, -math.inf, math.nan, 1e-300, 0.5]
)
weird_text = st.sampled_from(
    ["", "server-room", "ev-chargers", "battery", "../../etc", "x" * 5000, "\x00", "' OR 1=1"]
)
json_leaf = st.one_of(
    st.none(), st.booleans(), weird_number, weird_text, st.integers(), st.text(max_size=12)
)
json_any = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)


def executed_commands(runtime: Runtime) -> int:
    twins = runtime.field_side.simulator.twins  # type: ignore[union-attr]
    return sum(t.commands_executed for t in twins.values())


def acked_in_audit(runtime: Runtime) -> int:
    return sum(
        sum(1 for ack in r.acks if ack.get("result") == "ok")
        for r in runtime.actuator.audit.query(limit=100_000)
    )


def test_fuzzed_tool_calls_never_crash_or_act_outside_policy(runtime: Runtime) -> None:
    servers = {
        role: build_server(runtime, Caller(name=f"fuzz-{role}", role=role))
        for role in ("viewer", "agent")
    }

    async def schemas() -> dict[str, dict[str, Any]]:
        async with Client(servers["viewer"]) as client:
            tools = (await client.list_tools()).tools
        return {t.name: t.input_schema.get("properties", {}) for t in tools if t.name not in SKIP}

    tools = anyio.run(schemas)
    names = sorted(tools)
    before_devices, before_audit = executed_commands(runtime), acked_in_audit(runtime)
    tally = {"tried": 0, "crashes": 0, "errors": 0}

    @st.composite
    def calls(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
        role = draw(st.sampled_from(["viewer", "agent"]))
        name = draw(st.sampled_from(names))
        keys = [*tools[name], "extra", "confirm_token", "principal"]
        chosen = draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
        return role, name, {k: draw(json_any) for k in chosen}

    @settings(
        max_examples=examples(120),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(call=calls())
    def one(call: tuple[str, str, dict[str, Any]]) -> None:
        role, name, arguments = call

        async def go() -> None:
            async with Client(servers[role]) as client:
                result = await client.call_tool(name, arguments)
                tally["errors"] += bool(result.is_error)

        tally["tried"] += 1
        try:
            anyio.run(go)
        except Exception:  # a transport-level failure: the server broke
            tally["crashes"] += 1
            raise

    one()
    viewer_acts = [
        r
        for r in runtime.actuator.audit.query(principal="fuzz-viewer", limit=100_000)
        if r.outcome in ("executed", "failed", "awaiting_confirmation")
    ]
    board = runtime.field_side.simulator.twins["relay-board-1"]  # type: ignore[union-attr]
    bypasses = (executed_commands(runtime) - before_devices) - (
        acked_in_audit(runtime) - before_audit
    )
    record(
        "fuzz_mcp",
        tried=tally["tried"],
        crashes=tally["crashes"],
        unauthorized=len(viewer_acts),
        bypasses=max(0, bypasses),
    )
    assert tally["crashes"] == 0 and tally["errors"] > 0
    assert viewer_acts == []
    assert bypasses == 0  # every command a device carried out is in the audit log
    assert board.relays[0] and board.relays[1], "a critical load was shed"
