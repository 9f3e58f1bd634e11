"""Tool latency over the real MCP transports, beside a no-op tool (`ping`) on the same
transport in the same run: stdio subprocess, HTTP on loopback, and 50 concurrent HTTP
clients.

Run as `python -m bench.mcp_latency` (or `make bench`).
"""

from __future__ import annotations

import os
import subprocess
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

from bench._report import p50_p95, report
from tests.mcp_server.conftest import (
    site_file_for,
    stdio_server,
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


def cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        port = free_port()
        # the server in its own process: the clients' work must not hold its GIL
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._http_server",
                str(root / "http"),
                http_broker.url,
                str(port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            if server.stdout is None or server.stdout.readline().strip() != "ready":
                raise RuntimeError("the bench's MCP HTTP server did not start")
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
            cpu: dict[str, tuple[float, float]] = {}

            def measured(name: str, run: Callable[[], tuple[list[float], float]]):
                server_cpu, client_cpu = cpu_s(server.pid), time.process_time()
                samples, wall = run()
                cpu[name] = (cpu_s(server.pid) - server_cpu, time.process_time() - client_cpu)
                return name, samples, wall

            runs = [measured("bare ASGI JSON", lambda: anyio.run(concurrent_bare, bare_url))]
            runs += [
                measured(tool, lambda t=tool: anyio.run(concurrent_http, url, t))
                for tool in ("ping", "grid_state")
            ]
            floor = stats_ms(runs[0][1])[0]
            bare_rate = len(runs[0][1]) / runs[0][2]
            for tool, samples, wall in runs:
                p50, p95 = stats_ms(samples)
                rate = len(samples) / wall
                server_ms, client_ms = (1000 * c / len(samples) for c in cpu[tool])
                rows.append(
                    [
                        f"http x{CONCURRENT} clients",
                        tool,
                        str(len(samples)),
                        f"{p50:.1f}",
                        f"{p95:.1f}",
                        f"{p50 / floor:.1f}x bare; {rate:.0f} calls/s = {rate / bare_rate:.0%} "
                        f"of bare; p95/p50 {p95 / p50:.1f}; CPU per call: server "
                        f"{server_ms:.2f} ms, clients {client_ms:.2f} ms",
                    ]
                )
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
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
            "each, against one server process (`bench._http_server`; the clients run in "
            "another, so their own work does not hold the server's GIL); the bare row POSTs "
            "a JSON-RPC body to a plain Starlette JSON route mounted on the same app. "
            "CPU per call is each process's CPU over the whole run (the 50 sessions' setup "
            "included) divided by the timed calls. Targets: grid_state throughput >= 50 % of "
            "bare, p95 <= 2x p50."
        ],
    )


if __name__ == "__main__":
    main()
