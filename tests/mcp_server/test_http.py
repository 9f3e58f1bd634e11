"""MCP over streamable HTTP on loopback: tokens map to principals; no token, no entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.runtime import Runtime
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.scenario import READ_ONLY, every_tool_as_admin, ok, refused
from tests.services.process import free_port


@asynccontextmanager
async def connect(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_every_tool_over_http_with_a_good_token(runtime: Runtime, endpoint: str) -> None:
    async with connect(endpoint, "demo-admin-token") as client:
        await every_tool_as_admin(client, runtime.site.site.name)


@pytest.mark.parametrize("token", [None, "demo-admin-token-but-wrong", "Bearer"])
async def test_no_token_or_a_wrong_one_gets_401(endpoint: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            endpoint,
            json=body,
            headers={**headers, "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_each_token_acts_as_its_own_principal(endpoint: str) -> None:
    async with connect(endpoint, "demo-viewer-token") as viewer:
        assert (await ok(viewer, "ping"))["principal"] == "viewer"
        assert "Refused by rule 'role'" in await refused(viewer, "dispatch", plan_id="x")
    async with connect(endpoint, "demo-agent-token") as agent:
        text = await refused(agent, "toggle_relay", load="server-room", on=False, reason="shed it")
        assert "critical_load" in text


async def test_a_foreign_host_header_is_refused(endpoint: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            endpoint,
            json={},
            headers={
                "Host": "evil.example:80",
                "Authorization": "Bearer demo-admin-token",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code in (400, 403, 421)


async def test_a_read_only_http_endpoint_offers_only_read_tools(runtime: Runtime) -> None:
    port = free_port()
    app = http_app(runtime, "127.0.0.1", port, read_only=True)
    server = BackgroundServer(app, "127.0.0.1", port)
    server.start()
    try:
        async with connect(f"http://127.0.0.1:{port}/mcp", "demo-admin-token") as admin:
            assert {t.name for t in (await admin.list_tools()).tools} == READ_ONLY
            text = await refused(admin, "halt", reason="read-only server")
            assert "Refused by rule 'read_only'" in text
    finally:
        server.stop()
    assert not runtime.actuator.killswitch.state.halted
