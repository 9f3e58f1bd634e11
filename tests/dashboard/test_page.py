"""The dashboard in a real headless Chromium, on the MCP HTTP app of a simulated site
(real Mosquitto, simulator, gateway, SQLite): the login form, then plots whose
traces carry the site's own numbers. A screenshot is kept as a test artifact."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx2
import pytest

from app.demo import seed_history
from app.runtime import Runtime
from grid.errors import PolicyRefusal
from guardrails.principals import caller_named
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.conftest import broker, runtime  # noqa: F401 - fixtures
from tests.services.chromium import Chromium
from tests.services.process import free_port
from tools import act, plan

ROOT = Path(__file__).parents[2]
ARTIFACTS = Path(os.environ.get("GRIDPILOT_ARTIFACT_DIR", ROOT / "var" / "artifacts"))


@pytest.fixture(scope="module")
def site_url(runtime: Runtime) -> Iterator[str]:  # noqa: F811 - the imported fixture
    """The HTTP app (MCP + dashboard) of a site with a week of history, a plan and a
    refused agent action in its audit log."""
    seed_history(runtime)
    agent = caller_named(runtime.site, "agent")
    plan.optimize(runtime, agent, plan.OptimizeRequest(horizon_hours=24))
    with contextlib.suppress(PolicyRefusal):
        act.toggle_relay(
            runtime,
            agent,
            act.ToggleRelay(load="server-room", on=False, reason="test: shed a critical load"),
        )
    port = free_port()
    server = BackgroundServer(http_app(runtime, "127.0.0.1", port), "127.0.0.1", port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_data_endpoint_needs_a_token_and_a_loopback_host(site_url: str) -> None:
    api = f"{site_url}/dashboard/api/data"
    assert httpx2.get(api).status_code == 401
    assert httpx2.get(api, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx2.get(api, headers={"Host": "evil.example"}).status_code == 400
    ok = httpx2.get(api, headers={"Authorization": "Bearer demo-viewer-token"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["viewer"] == "viewer"
    assert [r["load"] for r in body["state"]["relays"]] == [
        "server-room",
        "cold-store",
        "ev-chargers",
        "hvac-office",
    ]
    refused = [a for a in body["actions"] if a["outcome"] == "refused"]
    # the three bad requests above are refused too, by rule 'auth' (audited at the gate)
    assert [a["principal"] for a in refused].count("anonymous") == 2
    agent = [a for a in refused if a["principal"] == "agent"]
    assert agent and any("critical" in why for why in agent[0]["refused_by"])


def test_dashboard_renders_site_data_in_chromium(
    site_url: str,
    runtime: Runtime,  # noqa: F811 - the imported fixture
    chromium: Chromium,
) -> None:
    page = chromium.page()
    try:
        page.goto(f"{site_url}/dashboard/")
        page.wait_for("!document.getElementById('login').hidden", 30, "the login form")
        assert page.evaluate("document.getElementById('board').hidden")

        page.evaluate(
            "document.getElementById('token').value = 'demo-viewer-token';"
            "document.getElementById('login').requestSubmit()"
        )
        counts = page.wait_for(
            "(() => { const c = window.gridpilot.pointCounts();"
            " return c['plot-plan'] && c['plot-plan'].length && c['plot-forecast'].length > 3"
            " ? c : null })()",
            60,
            "plots with data",
        )
        # the token went to sessionStorage, never into the address
        assert page.evaluate("sessionStorage.getItem('gridpilot.token')") == "demo-viewer-token"
        assert "token" not in page.evaluate("location.href")

        history = counts["plot-history"]
        assert history[0] > 0 and history[1] > 0 and history[2] > 0  # import, load, PV
        forecast = counts["plot-forecast"]
        assert forecast[0] > 0  # metered load
        assert forecast[1] == forecast[2] == forecast[3] == 96  # P10, P90, P50: 24 h of 15 min
        assert counts["plot-plan"][0] == 96  # the 24 h plan's steps
        assert counts["plot-costs"] == [7, 7]  # plan vs no control, per cost term

        # the numbers are the site's: the browser's grid-import trace matches the store
        trace = page.evaluate(
            "(() => { const t = document.getElementById('plot-history').data[0];"
            " return {x: t.x, y: t.y} })()"
        )
        stored = runtime.store.query(
            runtime.site.site.name,
            "grid",
            "power_kw",
            datetime.fromisoformat(trace["x"][0]),
            runtime.clock.now(),
            window_s=300,
            aggregate="mean",
        )
        assert stored, "the store has grid import over the plotted window"
        shown = dict(zip(trace["x"], trace["y"], strict=True))
        # the last window is still filling: its mean moves on
        for sample in stored[: len(shown) - 1]:
            key = sample.time.isoformat().replace("+00:00", "Z")
            assert shown[key] == pytest.approx(sample.value, abs=1e-3)
        assert len(stored) >= len(shown)

        limit = page.evaluate(
            "document.getElementById('plot-forecast').data.find(t => t.name === 'import limit').y"
        )
        assert limit == [60.0, 60.0]
        actions = page.evaluate("document.getElementById('actions').innerText")
        assert "refused" in actions and "critical" in actions

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        page.screenshot(shot)
        assert shot.stat().st_size > 20_000
        if os.environ.get("GRIDPILOT_UPDATE_SCREENSHOT") == "1":
            shutil.copy(shot, ROOT / "docs" / "dashboard.png")
    finally:
        page.close()
