"""`gridpilot mcp stdio`, `gridpilot serve` and `gridpilot tool list|call`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console
from grid.config import load_site
from grid.errors import ConfigError

mcp_app = typer.Typer(help="Serve the MCP tools to a client.", no_args_is_help=True)
tool_app = typer.Typer(
    help="Call MCP tools from scripts (an MCP client under the hood).", no_args_is_help=True
)

Speed = Annotated[
    float, typer.Option(help="Simulated-clock speed for the embedded site (60 = an hour a minute)")
]
ReadOnly = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Offer only the tools that change nothing (for small models and for review)",
    ),
]
Simulate = Annotated[
    bool | None,
    typer.Option(
        "--simulate/--no-simulate",
        help='Run the site simulator too (default: only with broker_url = "embedded"; '
        "--simulate against a real broker is for test benches, never a live site)",
    ),
]


@mcp_app.command("stdio")
def stdio(
    site_path: SiteOption = DEFAULT_SITE,
    speed: Speed = 60.0,
    simulate: Simulate = None,
    read_only: ReadOnly = False,
) -> None:
    """MCP over stdin/stdout, acting as the site file's stdio_principal (for Claude
    Desktop and other local clients). Logs go to stderr; stdout carries only protocol."""
    from app.runtime import open_runtime
    from guardrails.principals import caller_named
    from mcp_server.server import build_server

    site = load_site(site_path)
    name = site.settings.stdio_principal
    if name is None:
        raise ConfigError(
            "settings.stdio_principal is not set: name the principal the stdio server acts as"
        )
    runtime = open_runtime(site, speed=speed, simulate=simulate)
    try:
        build_server(runtime, caller_named(site, name), read_only=read_only).run("stdio")
    finally:
        runtime.close()


def serve_http(
    runtime, host: str, port: int, allowed_hosts: list[str], read_only: bool = False
) -> None:
    """Streamable HTTP at /mcp with bearer tokens; blocks until interrupted."""
    import uvicorn

    from mcp_server.http import http_app

    app = http_app(runtime, host, port, tuple(allowed_hosts), read_only=read_only)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@mcp_app.command("serve")
def serve(
    site_path: SiteOption = DEFAULT_SITE,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    allowed_host: Annotated[
        list[str],
        typer.Option(
            help="Host header to accept besides loopback (repeat); needed when serving on a "
            "public interface"
        ),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    speed: Speed = 60.0,
    simulate: Simulate = None,
    read_only: ReadOnly = False,
) -> None:
    """MCP over streamable HTTP at /mcp; every request needs a bearer token from the site
    file (401 otherwise)."""
    from app.runtime import open_runtime

    runtime = open_runtime(load_site(site_path), speed=speed, simulate=simulate)
    mode = ", read-only" if read_only else ""
    err_console.print(f"MCP endpoint: http://{host}:{port}/mcp (bearer token required{mode})")
    try:
        serve_http(runtime, host, port, allowed_host, read_only)
    finally:
        runtime.close()


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that parses as JSON (numbers, true, null, objects) is
    taken as JSON, anything else as a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="ARGS")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


Url = Annotated[
    str | None,
    typer.Option(
        help="HTTP endpoint of a running server, e.g. "
        "http://127.0.0.1:8765/mcp; default: start a stdio "
        "server for --site"
    ),
]
Token = Annotated[str | None, typer.Option(envvar="GRIDPILOT_TOKEN", help="Bearer token for --url")]


async def _with_client(site_path: Path, url: str | None, token: str | None, work):
    import httpx2
    from mcp import Client, StdioServerParameters

    if url is None:
        target: Any = StdioServerParameters(
            command=sys.executable, args=["-m", "grid", "mcp", "stdio", "--site", str(site_path)]
        )
        async with Client(target) as client:
            return await work(client)
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await work(client)


def run_client(site_path: Path, url: str | None, token: str | None, work):
    """Run `work(client)`; a connection the server refuses becomes one readable line."""
    import anyio

    try:
        return anyio.run(_with_client, site_path, url, token, work)
    except Exception as exc:  # the SDK wraps transport failures in exception groups
        leaf = _innermost(exc)
        reason = f"{type(leaf).__name__}: {leaf}"
        if url is not None and _status(url, token) == 401:
            reason = "the server refused the bearer token (401): pass a valid --token"
        err_console.print(
            f"could not talk to {url or 'the stdio server'}: {reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _status(url: str, token: str | None) -> int | None:
    """The HTTP status a bare request gets, to tell a refused token from other failures."""
    import httpx2

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx2.post(url, headers=headers, json={}, timeout=5).status_code
    except httpx2.TransportError:
        return None


def _innermost(exc: BaseException) -> BaseException:
    while True:
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif (inner := exc.__cause__ or exc.__context__) is not None:
            exc = inner
        else:
            return exc


@tool_app.command("list")
def list_tools(site_path: SiteOption = DEFAULT_SITE, url: Url = None, token: Token = None) -> None:
    """The tools the server offers, with their annotations."""
    from rich.table import Table

    async def work(client):
        return (await client.list_tools()).tools

    tools = run_client(site_path, url, token, work)
    table = Table("tool", "kind", "description")
    for tool in tools:
        a = tool.annotations
        kind = (
            "read-only"
            if a and a.read_only_hint
            else "destructive"
            if a and a.destructive_hint
            else "changes state"
        )
        table.add_row(tool.name, kind, (tool.description or "").split("\n")[0])
    console.print(table)


@tool_app.command("call")
def call_tool(
    name: Annotated[str, typer.Argument(help="Tool name (see `gridpilot tool list`)")],
    args: Annotated[list[str] | None, typer.Argument(help="key=value arguments")] = None,
    site_path: SiteOption = DEFAULT_SITE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Call one tool and print its structured result as JSON (exit 1 on a tool error)."""

    arguments = parse_arguments(args or [])

    async def work(client):
        return await client.call_tool(name, arguments)

    result = run_client(site_path, url, token, work)
    if result.is_error:
        err_console.print(
            " ".join(getattr(c, "text", "") for c in result.content),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if result.structured_content is not None:
        console.print_json(json.dumps(result.structured_content, default=str))
    else:
        for content in result.content:
            console.print(getattr(content, "text", content))


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")
    app.add_typer(tool_app, name="tool")
    app.command("serve")(serve)
