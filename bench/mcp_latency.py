"""Tool latency over the real MCP transports, beside a no-op tool (`ping`) on the same
transport in the same run: stdio subprocess, HTTP on loopback, and 50 concurrent HTTP
clients.

Run as `python -m bench.mcp_latency` (or `make bench`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

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
    samples: list[float] = []
    headers = {"Authorization": "Bearer demo-viewer-token"}

    async def one_client() -> None:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            samples.extend(await timed(lambda: client.call_tool(tool, {}), PER_CLIENT))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENT):
            tg.start_soon(one_client)
    return samples, time.perf_counter() - start


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
        server = BackgroundServer(http_app(rt, "127.0.0.1", port), "127.0.0.1", port)
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
            for transport, samples in (
                ("stdio", anyio.run(over_stdio, site_file)),
                ("http", anyio.run(over_http, url)),
            ):
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
            floor_samples, _ = anyio.run(concurrent_http, url, "ping")
            floor = stats_ms(floor_samples)[0]
            for tool in ("ping", "grid_state"):
                samples, wall = anyio.run(concurrent_http, url, tool)
                p50, p95 = stats_ms(samples)
                rows.append(
                    [
                        f"http x{CONCURRENT} clients",
                        tool,
                        str(len(samples)),
                        f"{p50:.1f}",
                        f"{p95:.1f}",
                        f"{p50 / floor:.1f}x ({len(samples) / wall:.0f} calls/s)",
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
            f"The concurrent rows run {CONCURRENT} HTTP sessions at once, {PER_CLIENT} calls "
            "each, against one server process."
        ],
    )


if __name__ == "__main__":
    main()
