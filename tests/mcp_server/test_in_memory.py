"""The MCP server in process: every tool, each role's limits, confirmations."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import ElicitResult

from app.runtime import Runtime
from guardrails.principals import Caller
from mcp_server.server import build_server
from tests.mcp_server.scenario import every_tool_as_admin, ok, refused


def client_as(runtime: Runtime, name: str, role: str, **kwargs: Any) -> Client:
    return Client(build_server(runtime, Caller(name=name, role=role)), **kwargs)


async def test_every_tool_in_memory(runtime: Runtime) -> None:
    async with client_as(runtime, "admin", "admin") as client:
        await every_tool_as_admin(client, runtime.site.site.name)


async def test_viewer_reads_but_cannot_dispatch_and_the_refusal_is_audited(
    runtime: Runtime,
) -> None:
    async with client_as(runtime, "viewer", "viewer") as viewer:
        assert (await ok(viewer, "grid_state"))["site"] == runtime.site.site.name
        text = await refused(viewer, "dispatch", plan_id="anything")
        assert "Refused by rule 'role'" in text and "viewer" in text
        text = await refused(viewer, "optimize", horizon_hours=1)
        assert "needs the plan capability" in text
    records = runtime.actuator.audit.query(principal="viewer", outcome="refused")
    assert [r.action for r in records][-2:] == ["dispatch", "optimize"]


async def test_agent_cannot_shed_a_critical_load(runtime: Runtime) -> None:
    async with client_as(runtime, "agent", "agent") as agent:
        text = await refused(
            agent, "toggle_relay", load="cold-store", on=False, reason="try to shed a critical load"
        )
    assert "Refused by rule 'critical_load'" in text
    assert "Critical loads stay on" in text
    last = runtime.actuator.audit.query(principal="agent")[-1]
    assert last.outcome == "refused" and last.action == "toggle_relay"
    assert any(r["rule"] == "critical_load" and not r["allowed"] for r in last.decision["results"])
    assert runtime.snapshot().relay_on["cold-store"] is True


async def test_agent_acts_within_policy_without_confirmation(runtime: Runtime) -> None:
    async with client_as(runtime, "agent", "agent") as agent:
        out = await ok(
            agent, "set_setpoint", asset="battery", power_kw=-2.0, reason="charge from surplus"
        )
    assert out["status"] == "executed" and out["confirmation_token"] is None


async def test_operator_confirms_through_elicitation_when_the_client_can(
    runtime: Runtime,
) -> None:
    asked: list[str] = []

    async def answer(_context, params) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with client_as(runtime, "operator", "operator", elicitation_callback=answer) as op:
        out = await ok(op, "set_setpoint", asset="battery", power_kw=1.0, reason="operator check")
    assert out["status"] == "executed"
    assert asked and "set battery power battery to 1 kW" in asked[0]


async def test_a_declined_confirmation_does_nothing_and_is_audited(runtime: Runtime) -> None:
    async def decline(_context, _params) -> ElicitResult:
        return ElicitResult(action="decline")

    sent_before = runtime.actuator.audit.count()
    async with client_as(runtime, "operator", "operator", elicitation_callback=decline) as op:
        text = await refused(
            op, "set_setpoint", asset="battery", power_kw=2.0, reason="operator check"
        )
    assert "Refused by rule 'declined'" in text and "the person declined" in text
    assert "do not call again" in text and text.count("Nothing was changed") == 1
    assert runtime.actuator.audit.count() == sent_before + 1


async def test_a_token_for_other_arguments_is_refused(runtime: Runtime) -> None:
    async with client_as(runtime, "operator", "operator") as op:
        first = await ok(op, "set_setpoint", asset="battery", power_kw=1.5, reason="check one")
        text = await refused(
            op,
            "set_setpoint",
            asset="battery",
            power_kw=9.0,
            reason="check one",
            confirmation_token=first["confirmation_token"],
        )
    assert "Refused by rule 'confirmation'" in text and "other arguments" in text


async def test_bad_input_names_the_field_and_the_limit(runtime: Runtime) -> None:
    async with client_as(runtime, "admin", "admin") as admin:
        text = await refused(admin, "forecast", target="load", horizon_hours=48)
        assert "horizon_hours" in text and "24" in text
        text = await refused(
            admin, "set_setpoint", asset="server-room", power_kw=1, reason="not a setpoint asset"
        )
        assert "server-room" in text and "battery" in text
        text = await refused(admin, "toggle_relay", load="ev-chargers", on=True, reason="x")
        assert "reason" in text and "at least 3" in text


async def test_history_for_a_device_id_says_which_asset_to_ask_for(runtime: Runtime) -> None:
    async with client_as(runtime, "viewer", "viewer") as viewer:
        out = await ok(viewer, "grid_history", asset="bess-1", quantity="power_kw", hours=1)
        assert out["values"] == [] and "device id" in out["note"] and "battery" in out["note"]
        text = await refused(viewer, "grid_history", asset="bess", quantity="power_kw")
        assert "Refused by rule 'invalid_input'" in text and "one of: battery" in text


async def test_garbage_is_not_coerced_into_a_setpoint(runtime: Runtime) -> None:
    before = runtime.live.device("bess-1").state.get("setpoint_kw")
    async with client_as(runtime, "admin", "admin") as admin:
        for value in (True, "25"):
            text = await refused(
                admin, "set_setpoint", asset="battery", power_kw=value, reason="coercion"
            )
            assert "power_kw" in text and "valid number" in text
    assert runtime.live.device("bess-1").state.get("setpoint_kw") == before
    record = runtime.actuator.audit.tail(1)[0]
    assert record.outcome == "refused" and record.decision["results"][0]["field"] == "power_kw"
