"""The MCP HTTP server of `bench.mcp_latency`, in a process of its own, so the clients
timing it do not share its interpreter lock (they did: the 50 clients' own work, such
as validating each result against the tool's output schema, counted against the
server). Serves the example site with the simulator at 10x, plus a bare Starlette JSON
route `/bare` on the same app as the ceiling. Prints `ready` once telemetry has
arrived and serves until its stdin closes.

Run as `python -m bench._http_server ROOT BROKER_URL PORT` (the bench does).
"""

from __future__ import annotations

import sys
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.runtime import open_runtime
from grid.clock import SimClock
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.conftest import site_for, wait_for_telemetry


async def _bare(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {}})


def main(root: Path, broker_url: str, port: int) -> None:
    rt = open_runtime(site_for(root, broker_url), clock=SimClock(speed=10), simulate=True)
    app = http_app(rt, "127.0.0.1", port)
    app.add_route("/bare", _bare, methods=["POST"])
    server = BackgroundServer(app, "127.0.0.1", port)
    try:
        server.start()
        wait_for_telemetry(rt)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the bench closes it
    finally:
        server.stop()
        rt.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
