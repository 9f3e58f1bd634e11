"""Tool latency over the real MCP transports, beside a no-op tool (`ping`) on the same
transport in the same run: stdio subprocess, HTTP on loopback, and 50 concurrent HTTP
clients.

Run as `python -m bench.mcp_latency` (or `make bench`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.runtime import open_runtime
from bench._report import p50_p95, report
from grid.clock import SimClock
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.conftest import (
    site_file_for,
    site_for,
    stdio_server,
    wait_for_telemetry,
)
from tests.services.mosquitto import MosquittoServer
from tests.services.process import free_port

CALLS = {"ping": 200, "grid_state": 200, "forecast": 50, "optimize": 10}
ARGS: dict[str, dict[str, Any]] = {
    "ping": {},
    "grid_state": {},
    "forecast": {"target": "load", "horizon_hours": 24},
    "optimize": {"horizon_hours": 24},
}
CONCURRENT = 50
CONCURRENCY_ONLY = "--concurrency-only" in sys.argv  # skip stdio and single-client rows
PER_CLIENT = 20


def stats_ms(samples: list[float]) -> tuple[float, float]:
    p50, p95 = p50_p95(samples)
    return p50 * 1000, p95 * 1000


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        result = await call()
        out.append(time.perf_counter() - start)
        if result.is_error:
            raise RuntimeError(f"tool error: {result.content}")
    return out


async def per_tool(client: Client) -> dict[str, list[float]]:
    samples = {}
    for tool, n in CALLS.items():
        await client.call_tool(tool, ARGS[tool])  # warm up caches and the model registry
        samples[tool] = await timed(lambda t=tool: client.call_tool(t, ARGS[t]), n)
    return samples


async def over_http(url: str) -> dict[str, list[float]]:
    headers = {"Authorization": "Bearer demo-admin-token"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await per_tool(client)


async def concurrent_http(url: str, tool: str) -> tuple[list[float], float]:
    """Every client connects and makes one call (its session and the tool's output
    schema fetched) before any is timed: the rows compare steady-state calls."""
    samples: list[float] = []
    headers = {"Authorization": "Bearer demo-viewer-token"}
    ready, go = [0], anyio.Event()
    began = [0.0]

    async def one_client() -> None:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            await client.call_tool(tool, {})
            ready[0] += 1
            if ready[0] == CONCURRENT:
                began[0] = time.perf_counter()
                go.set()
            await go.wait()
            samples.extend(await timed(lambda: client.call_tool(tool, {}), PER_CLIENT))

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENT):
            tg.start_soon(one_client)
    return samples, time.perf_counter() - began[0]


async def concurrent_bare(url: str) -> tuple[list[float], float]:
    """The same load on a bare ASGI JSON endpoint of the same server: the ceiling. Each
    client's connection is open (one request) before any is timed, as for the tools."""
    samples: list[float] = []
    ready, go = [0], anyio.Event()
    began = [0.0]
    body = {"jsonrpc": "2.0", "id": 1, "method": "x"}

    async def one_client() -> None:
        async with httpx2.AsyncClient(timeout=120) as http:
            (await http.post(url, json=body)).raise_for_status()
            ready[0] += 1
            if ready[0] == CONCURRENT:
                began[0] = time.perf_counter()
                go.set()
            await go.wait()
            for _ in range(PER_CLIENT):
                start = time.perf_counter()
                response = await http.post(url, json=body)
                response.raise_for_status()
                samples.append(time.perf_counter() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENT):
            tg.start_soon(one_client)
    return samples, time.perf_counter() - began[0]


async def _bare(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {}})


async def over_stdio(site_file: Path) -> dict[str, list[float]]:
    params = stdio_server(site_file)
    async with Client(params) as client:
        await anyio.sleep(3)  # let telemetry arrive
        return await per_tool(client)


def main() -> None:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "http").mkdir()
        (root / "stdio").mkdir()
        http_broker, stdio_broker = MosquittoServer(root / "http"), MosquittoServer(root / "stdio")
        http_broker.start()
        stdio_broker.start()
        rt = open_runtime(
            site_for(root / "http", http_broker.url), clock=SimClock(speed=10), simulate=True
        )
        port = free_port()
        app = http_app(rt, "127.0.0.1", port)
        app.add_route("/bare", _bare, methods=["POST"])
        server = BackgroundServer(app, "127.0.0.1", port)
        try:
            server.start()
            wait_for_telemetry(rt)
            url = f"http://127.0.0.1:{port}/mcp"
            site_file = site_file_for(root / "stdio", stdio_broker.url)
            site_file.write_text(
                site_file.read_text().replace(
                    'stdio_principal = "operator"', 'stdio_principal = "admin"'
                )
            )
            single = (
                []
                if CONCURRENCY_ONLY
                else [
                    ("stdio", anyio.run(over_stdio, site_file)),
                    ("http", anyio.run(over_http, url)),
                ]
            )
            for transport, samples in single:
                floor = stats_ms(samples["ping"])[0]
                for tool, values in samples.items():
                    p50, p95 = stats_ms(values)
                    rows.append(
                        [
                            transport,
                            tool,
                            str(len(values)),
                            f"{p50:.1f}",
                            f"{p95:.1f}",
                            f"{p50 / floor:.1f}x",
                        ]
                    )
            bare_url = f"http://127.0.0.1:{port}/bare"
            bare_samples, bare_wall = anyio.run(concurrent_bare, bare_url)
            floor = stats_ms(bare_samples)[0]
            bare_rate = len(bare_samples) / bare_wall
            runs = [("bare ASGI JSON", bare_samples, bare_wall)]
            runs += [
                (tool, *anyio.run(concurrent_http, url, tool)) for tool in ("ping", "grid_state")
            ]
            for tool, samples, wall in runs:
                p50, p95 = stats_ms(samples)
                rate = len(samples) / wall
                rows.append(
                    [
                        f"http x{CONCURRENT} clients",
                        tool,
                        str(len(samples)),
                        f"{p50:.1f}",
                        f"{p95:.1f}",
                        f"{p50 / floor:.1f}x bare; {rate:.0f} calls/s = {rate / bare_rate:.0%} "
                        f"of bare; p95/p50 {p95 / p50:.1f}",
                    ]
                )
        finally:
            server.stop()
            rt.close()
            http_broker.stop()
            stdio_broker.stop()
    report(
        "mcp_latency",
        "MCP tool latency (ms) beside the no-op `ping` on the same transport",
        ["transport", "tool", "calls", "p50 ms", "p95 ms", "p50 / ping"],
        rows,
        [
            "Example site on mosquitto with the simulator at 10x, SQLite store. The site has "
            "only minutes of history, so forecast takes its fallback path (model inference is "
            "in forecast_latency); optimize solves the 24 h MILP with CBC on each call. "
            f"The concurrent rows run {CONCURRENT} HTTP clients at once, {PER_CLIENT} calls "
            "each, against one server process; the bare row POSTs a JSON-RPC body to a plain "
            "Starlette JSON route mounted on the same app. Targets: grid_state throughput "
            ">= 50 % of bare, p95 <= 2x p50."
        ],
    )


if __name__ == "__main__":
    main()
