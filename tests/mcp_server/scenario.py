"""Every tool, resource and prompt, called through whatever MCP client is given.

The same scenario runs in memory, over a stdio subprocess and over HTTP, so each
transport is shown to carry every tool, structured results and readable errors.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp import Client

TOOLS = {
    "ping",
    "grid_state",
    "list_assets",
    "grid_history",
    "forecast",
    "optimize",
    "dispatch",
    "plan_status",
    "toggle_relay",
    "set_setpoint",
    "anomalies",
    "policy",
    "audit_log",
    "lease",
    "halt",
    "resume",
}
READ_ONLY = {
    "ping",
    "plan_status",
    "grid_state",
    "list_assets",
    "grid_history",
    "forecast",
    "optimize",
    "anomalies",
    "policy",
    "audit_log",
}
DESTRUCTIVE = {"dispatch", "toggle_relay", "set_setpoint", "halt"}


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def ok(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, f"{name} failed: {text_of(result)}"
    assert result.structured_content is not None, f"{name} gave no structured content"
    return result.structured_content


async def refused(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, f"{name} was not refused: {result.structured_content}"
    return text_of(result)


async def check_tool_list(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 40, name
        assert tool.annotations is not None, name
        assert tool.annotations.read_only_hint is (name in READ_ONLY), name
        assert bool(tool.annotations.destructive_hint) is (name in DESTRUCTIVE), name
        assert tool.output_schema is not None, name


async def confirmed(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    """Call a direct action as a client without elicitation: preview, then the token."""
    first = await ok(client, name, **arguments)
    assert first["status"] == "needs_confirmation", first
    assert first["confirmation_token"] and "nothing was done" in first["summary"]
    return await ok(client, name, **arguments, confirmation_token=first["confirmation_token"])


async def wait_for_telemetry(client: Client, timeout_s: float = 30.0) -> None:
    """Until live state and the store both hold readings (the gateway writes in batches)."""
    with anyio.fail_after(timeout_s):
        while (await ok(client, "grid_state"))["soc_fraction"].get("battery") is None:
            await anyio.sleep(0.2)
        while not (
            await ok(
                client, "grid_history", asset="grid", quantity="power_kw", hours=1, window_s=60
            )
        )["values"]:
            await anyio.sleep(0.2)


async def every_tool_as_admin(client: Client, site: str) -> None:
    await check_tool_list(client)
    await wait_for_telemetry(client)
    assert (await ok(client, "ping"))["principal"] == "admin"

    state = await ok(client, "grid_state")
    assert state["site"] == site and len(state["relays"]) == 4
    assets = await ok(client, "list_assets")
    assert {a["kind"] for a in assets["assets"]} == {"battery", "pv", "load", "peaker", "grid"}
    history = await ok(
        client, "grid_history", asset="grid", quantity="power_kw", hours=1, window_s=60
    )
    assert history["values"] and len(history["times"]) == len(history["values"])

    fc = await ok(client, "forecast", target="load", horizon_hours=2)
    assert len(fc["p50"]) == 8
    assert all(lo <= mid <= hi for lo, mid, hi in zip(fc["p10"], fc["p50"], fc["p90"], strict=True))

    plan = await ok(client, "optimize", horizon_hours=2)
    assert plan["status"] in {"optimal", "feasible", "fallback"} and plan["plan_id"]
    result = await client.call_tool(
        "dispatch", {"plan_id": plan["plan_id"], "plan_hash": plan["plan_hash"]}
    )
    if result.is_error:  # a guardrail may refuse a step; it must say which rule
        assert "Refused by rule" in text_of(result)
    else:
        assert result.structured_content["status"] in {"executed", "failed"}
        run = await ok(client, "plan_status", plan_id=plan["plan_id"])
        assert run["plan_id"] == plan["plan_id"] and run["steps"][0]["audit_seq"]
    bad = await refused(client, "dispatch", plan_id="no-such-plan")
    assert "Refused by rule 'plan_unknown'" in bad and "call optimize" in bad.lower()

    done = await confirmed(
        client, "toggle_relay", load="hvac-office", on=True, reason="scenario: office opens"
    )
    assert done["status"] == "executed", done
    assert done["commands"][0]["result"] == "ok"
    relays = {r["load"]: r["on"] for r in (await ok(client, "grid_state"))["relays"]}
    assert relays["hvac-office"] is True
    setpoint = await confirmed(
        client, "set_setpoint", asset="battery", power_kw=3.0, reason="scenario: small discharge"
    )
    assert setpoint["status"] == "executed", setpoint

    report = await ok(client, "anomalies", hours=1)
    assert {t["asset"] for t in report["trust_now"]} >= {"battery", "pv-roof"}
    policy = await ok(
        client, "policy", toggle_relay={"load": "server-room", "on": False, "reason": "dry run"}
    )
    assert policy["role"] == "admin" and policy["dry_run"]
    assert policy["dry_run_allowed"] is True and policy["dry_run_needs_confirmation"] is True

    lease = await ok(client, "lease", asset="battery", priority=60, duration_s=60)
    assert lease["held"] and lease["holder"] == "admin"
    assert not (await ok(client, "lease", asset="battery", op="release"))["held"]

    assert (await ok(client, "halt", reason="scenario halt"))["halted"] is True
    assert (await ok(client, "grid_state"))["halted"] is True
    assert (await ok(client, "resume", reason="scenario over"))["halted"] is False

    audit = await ok(client, "audit_log", limit=100)
    assert audit["chain_ok"] is True
    actions = [(r["action"], r["outcome"]) for r in audit["records"]]
    assert ("toggle_relay", "awaiting_confirmation") in actions
    assert ("toggle_relay", "executed") in actions
    assert ("dispatch", "refused") in actions and ("halt", "recorded") in actions

    await check_resources_and_prompts(client, plan["plan_id"], site)


async def check_resources_and_prompts(client: Client, plan_id: str, site: str) -> None:
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"grid://site", "grid://state", "grid://policy", "grid://audit/recent"} <= uris
    templates = {
        t.uri_template for t in (await client.list_resource_templates()).resource_templates
    }
    assert "grid://plans/{plan_id}" in templates
    site_text = (await client.read_resource("grid://site")).contents[0].text
    assert site in site_text and "token_sha256" not in site_text
    plan_text = (await client.read_resource(f"grid://plans/{plan_id}")).contents[0].text
    assert plan_id in plan_text and "content_hash" in plan_text
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == {
        "operator_briefing",
        "peak_shaving_plan",
        "incident_review",
        "arbitrage_review",
    }
    assert all(p.description for p in prompts.values())
    briefing = await client.get_prompt("operator_briefing", {"hours": "6"})
    assert "next 6 hours" in briefing.messages[0].content.text
