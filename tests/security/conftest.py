"""One simulated site on real Mosquitto, served over HTTP, for hostile callers.

The site clock runs at wall speed, so a relay switched at the start is still inside
its dwell at the end; the per-principal rate limit is raised so that each attempt is
refused by the rule it aims at (the rate limit has its own test over MQTT). Every
command the gateway publishes is counted by a separate MQTT subscriber: an attempt
that got through would show up there whatever the server said.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from app.runtime import Runtime, open_runtime
from grid.clock import SimClock
from guardrails.plans import PlanBook
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.conftest import CommandSpy, site_for, wait_for_telemetry, wait_until_trusted
from tests.services.mosquitto import MosquittoServer
from tests.services.process import free_port

PROTOCOL = "2025-11-25"
TALLY: dict[str, int] = {"attempts": 0, "unsafe_actuations": 0, "missing_from_audit": 0}


class Rpc:
    """JSON-RPC over streamable HTTP, one session per bearer token, as a hostile script
    would speak it: no SDK client smoothing anything over."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sessions: dict[str, str] = {}
        self._http = httpx2.Client(timeout=60)

    def headers(self, token: str | None) -> dict[str, str]:
        out = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token is not None:
            out["Authorization"] = f"Bearer {token}"
            if token in self._sessions:
                out["mcp-session-id"] = self._sessions[token]
                out["mcp-protocol-version"] = PROTOCOL
        return out

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> httpx2.Response:
        return self._http.post(self.url, content=json.dumps(body), headers=headers)

    def session(self, token: str) -> None:
        if token in self._sessions:
            return
        init = {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "hostile", "version": "0"},
        }
        response = self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init},
            self.headers(token),
        )
        assert response.status_code == 200, response.text
        self._sessions[token] = response.headers["mcp-session-id"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, self.headers(token))

    def call(self, token: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tools/call result (content, isError, structuredContent)."""
        self.session(token)
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        response = self.post(body, self.headers(token))
        assert response.status_code == 200, response.text
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads(data[-1] if data else response.text)
        assert "result" in message, message
        return message["result"]

    def close(self) -> None:
        self._http.close()


@dataclass
class HostileSite:
    runtime: Runtime
    url: str
    rpc: Rpc
    spy: CommandSpy
    plan_wall: SimClock
    plan: dict[str, Any] = field(default_factory=dict)

    def text(self, result: dict[str, Any]) -> str:
        return " ".join(c.get("text", "") for c in result["content"])

    def ok(self, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.rpc.call(token, tool, arguments)
        assert not result.get("isError"), self.text(result)
        return result["structuredContent"]

    def confirmed(self, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
        first = self.ok(token, tool, **arguments)
        if first["status"] != "needs_confirmation":
            return first
        return self.ok(token, tool, **arguments, confirmation_token=first["confirmation_token"])


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSite]:
    root = tmp_path_factory.mktemp("security")
    broker = MosquittoServer(root)
    broker.start()
    site = site_for(root, broker.url)
    policy = site.policy.model_copy(update={"actions_per_minute_per_principal": 10_000})
    site = site.model_copy(update={"policy": policy})
    rt = open_runtime(site, clock=SimClock(speed=1.0), simulate=True)
    # Plans expire on the wall clock; this one is the wall clock plus a hand to move it.
    plan_wall = SimClock(start=datetime.now(UTC), speed=1.0)
    rt.plans = PlanBook(site.policy.plan_ttl_s, wall=plan_wall)
    port = free_port()
    server = BackgroundServer(http_app(rt, "127.0.0.1", port), "127.0.0.1", port)
    server.start()
    spy = CommandSpy(broker.url, site.site.name)
    rpc = Rpc(f"http://127.0.0.1:{port}/mcp")
    try:
        wait_for_telemetry(rt, timeout_s=30)
        wait_until_trusted(rt)
        yield HostileSite(rt, rpc.url, rpc, spy, plan_wall)
    finally:
        rpc.close()
        spy.stop()
        server.stop()
        rt.close()
        broker.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY["attempts"]:
        terminalreporter.write_sep("=", "hostile attempts over HTTP")
        terminalreporter.write_line(
            f"attempts: {TALLY['attempts']}  unsafe actuations: {TALLY['unsafe_actuations']}  "
            f"attempts missing from the audit: {TALLY['missing_from_audit']}"
        )
