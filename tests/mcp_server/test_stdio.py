"""MCP over a stdio subprocess, as Claude Desktop runs it: `gridpilot mcp stdio`."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from tests.mcp_server.conftest import site_file_for, stdio_server
from tests.mcp_server.scenario import READ_ONLY, every_tool_as_admin, ok
from tests.services.mosquitto import MosquittoServer


async def test_every_tool_over_stdio_with_highs_selected(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    site_file = site_file_for(tmp_path, mosquitto.url)
    site_file.write_text(
        site_file.read_text().replace('stdio_principal = "operator"', 'stdio_principal = "admin"')
    )
    params = stdio_server(site_file)
    async with Client(params) as client:
        # HiGHS prints a banner to stdout unless kept off it; a stray byte there would
        # break the protocol for every call after this one.
        plan = await ok(client, "optimize", horizon_hours=1, solver="highs")
        assert plan["plan_id"]
        await every_tool_as_admin(client, "riverside-depot")


async def test_read_only_stdio_offers_only_read_tools(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    params = stdio_server(site_file_for(tmp_path, mosquitto.url))
    params = params.model_copy(update={"args": [*params.args, "--read-only"]})
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_ONLY
        result = await client.call_tool("toggle_relay", {"load": "ev-chargers", "on": False})
        text = " ".join(c.text for c in result.content)
        assert result.is_error and "Refused by rule 'read_only'" in text
