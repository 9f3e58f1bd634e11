"""The MCP server: the tool table (`registry`), resources and prompts over one runtime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from grid.errors import PolicyRefusal
from guardrails.principals import Caller
from mcp_server.auth import ServerState, SiteTokenVerifier, current_caller
from mcp_server.content import register_prompts, register_resources
from mcp_server.errors import clip_arguments, tool_error
from mcp_server.registry import SPECS, make_tools
from tools.context import Runtime

INSTRUCTIONS = """\
gridpilot operates one power site (loads on relays, PV, a battery, a gas peaker, a grid
connection). Start with grid_state and list_assets. Look ahead with forecast; plan with
optimize (changes nothing) and carry a plan out with dispatch(plan_id). toggle_relay and
set_setpoint act directly. Every action passes guardrails: a refusal names the rule and
the numbers, and says what to do instead. Critical loads are never shed by agents. Units
are in every field name (kW, kWh, EUR/kWh, fraction 0-1, seconds)."""

READ_ONLY_NOTE = "\nThis server is read-only: it offers only tools that change nothing."


def server_version() -> str:
    try:
        return version("gridpilot")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


class SiteServer(MCPServer):
    """MCPServer that audits a call to a tool it does not offer, like any other refusal:
    an unknown name, or a tool that acts when the server is read-only."""

    def __init__(self, st: ServerState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._st = st
        self._offered = {tool.name for tool in kwargs.get("tools") or []}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult:
        if name not in self._offered:
            if name in SPECS:
                refusal = PolicyRefusal("read_only", f"this server is read-only: {name} acts")
            else:
                offered = ", ".join(sorted(self._offered))
                refusal = PolicyRefusal("unknown_tool", f"no tool {name[:64]!r}; tools: {offered}")
            caller = current_caller(self._st)
            asked = clip_arguments({"tool": name, "arguments": arguments})
            actuator = self._st.runtime.actuator
            await anyio.to_thread.run_sync(
                lambda: actuator.refuse(caller, "call_tool", asked, refusal)
            )
            raise tool_error(refusal)
        return await super().call_tool(name, arguments, context)


def build_server(
    runtime: Runtime,
    default_caller: Caller | None = None,
    *,
    http_url: str | None = None,
    read_only: bool = False,
) -> MCPServer:
    """An MCPServer over `runtime`. With `http_url`, bearer tokens are required; with
    `read_only`, only the tools annotated read-only are offered."""
    st = ServerState(runtime=runtime, default_caller=default_caller)

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[ServerState]:
        yield st  # the runtime's life is its owner's: the server only borrows it

    auth_kwargs: dict[str, Any] = {}
    if http_url is not None:
        auth_kwargs = {
            "token_verifier": SiteTokenVerifier(runtime.site),
            "auth": AuthSettings(
                issuer_url=http_url, resource_server_url=http_url, validate_token_resource=False
            ),
        }
    server = SiteServer(
        st,
        name="gridpilot",
        title="gridpilot",
        version=server_version(),
        instructions=INSTRUCTIONS + (READ_ONLY_NOTE if read_only else ""),
        lifespan=lifespan,
        tools=make_tools(st, read_only=read_only),
        **auth_kwargs,
    )
    register_resources(server, st)
    register_prompts(server)
    return server
