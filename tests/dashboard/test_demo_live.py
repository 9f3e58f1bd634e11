"""`gridpilot demo` as a person runs it: it prints where to look, the dashboard behind
that address shows the live simulated site, a scripted fault comes, and Ctrl-C stops
everything cleanly."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx2

from tests.mcp_server.conftest import site_file_for
from tests.services.process import free_port


def _lines(stream, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)
    into.put("")  # end of output


def read_until(lines: queue.Queue[str], pattern: str, seen: list[str], timeout_s: float) -> str:
    while True:
        line = lines.get(timeout=timeout_s)
        if not line:
            raise AssertionError(f"demo ended before {pattern!r}:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if re.search(pattern, line):
            return line


def test_demo_prints_addresses_serves_live_dashboard_injects_a_fault_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    site_file = site_file_for(tmp_path, "embedded")
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "grid", "demo", "--site", str(site_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        dashboard = read_until(lines, r"dashboard:", seen, 120)
        assert f"http://127.0.0.1:{port}/dashboard/" in dashboard
        assert f"http://127.0.0.1:{port}/mcp" in read_until(lines, r"MCP endpoint:", seen, 10)
        broker = read_until(lines, r"MQTT broker:", seen, 10)
        broker_url = re.search(r"mqtt://127\.0\.0\.1:\d+", broker).group(0)
        read_until(lines, r"demo-viewer-token", seen, 10)
        read_until(lines, r'"mcpServers"', seen, 10)
        read_until(lines, r"^plan plan-", seen, 120)

        # the dashboard shows the running site: live state, history, a forecast, the plan
        data = httpx2.get(
            f"http://127.0.0.1:{port}/dashboard/api/data",
            headers={"Authorization": "Bearer demo-viewer-token"},
            timeout=60,
        ).json()
        assert data["state"]["grid_import_kw"] is not None
        assert all(data["state"]["devices_online"].values())
        # 12 h of the seeded history (15 min steps: 47 or 48 points, as the window
        # falls) where the live readings alone would be a few
        assert len(data["history"]["load_kw:server-room"]["values"]) >= 45
        assert len(data["load_forecast"]["p50"]) == 96
        assert data["plan"]["steps"]

        fault = read_until(lines, r"scripted fault", seen, 60)
        assert "pv_shading" in fault
        # the broker it printed is the one the site speaks on
        state = subprocess.run(
            [
                sys.executable,
                "-m",
                "grid",
                "state",
                "--site",
                str(site_file),
                "--broker",
                broker_url,
                "--wait",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert state.returncode == 0 and "bess-1" in state.stdout, state.stderr

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        read_until(lines, r"^stopping", seen, 10)
        read_until(lines, r"^stopped", seen, 10)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
