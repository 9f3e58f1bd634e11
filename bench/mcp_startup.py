"""Start-up: spawning `gridpilot mcp stdio` until `initialize` has been answered, beside
a bare `MCPServer` with one tool started the same way (a Python subprocess on stdio),
alternating, in one run. Claude Desktop starts the server each time it opens.

Run as `python -m bench.mcp_startup` (or `make bench`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from bench._report import p50_p95, report
from tests.mcp_server.conftest import site_file_for
from tests.services.mosquitto import MosquittoServer

RUNS = 5
TARGET_RATIO = 2.0
BARE = """\
from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
def ping() -> str:
    return "pong"


server.run("stdio")
"""


async def spawn_to_initialize(params: StdioServerParameters) -> float:
    start = time.perf_counter()
    async with Client(params) as client:
        seconds = time.perf_counter() - start
        await client.list_tools()  # the session works, not only the handshake
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = MosquittoServer(root)
        broker.start()
        try:
            bare_script = root / "bare.py"
            bare_script.write_text(BARE)
            site_file = site_file_for(root, broker.url)
            bare = StdioServerParameters(command=sys.executable, args=[str(bare_script)])
            gridpilot = StdioServerParameters(
                command=sys.executable,
                args=["-m", "grid", "mcp", "stdio", "--site", str(site_file), "--no-simulate"],
                cwd=str(Path(__file__).parents[1]),
            )
            samples: dict[str, list[float]] = {"bare": [], "gridpilot": []}
            for _ in range(RUNS):
                samples["bare"].append(anyio.run(spawn_to_initialize, bare))
                samples["gridpilot"].append(anyio.run(spawn_to_initialize, gridpilot))
        finally:
            broker.stop()
    floor = p50_p95(samples["bare"])[0]
    rows = []
    for name, values in samples.items():
        p50, p95 = p50_p95(values)
        ratio = p50 / floor
        met = "" if name == "bare" else ("yes" if ratio <= TARGET_RATIO else "NO")
        rows.append([name, str(len(values)), f"{p50:.2f}", f"{p95:.2f}", f"{ratio:.2f}x", met])
    report(
        "mcp_startup",
        "stdio spawn to answered `initialize` (s), beside a bare MCPServer with one tool",
        ["server", "runs", "p50 s", "p95 s", "p50 / bare", "target met"],
        rows,
        [
            f"Target: gridpilot <= {TARGET_RATIO:g}x the bare server. gridpilot serves the "
            "example site against a real Mosquitto (no simulator), SQLite store; xgboost, "
            "pulp, pandas, sklearn and highspy load only when a tool first needs them "
            "(tests/mcp_server/test_lazy_imports.py)."
        ],
    )


if __name__ == "__main__":
    main()
