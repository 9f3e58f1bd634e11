"""One running site for the MCP tests: real mosquitto, the simulator, the gateway,
SQLite, on a simulated clock ten times faster than the wall."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import StdioServerParameters

from app.runtime import Runtime, open_runtime
from edge.mqtt import connect, make_client
from forecasting.anomaly import assess
from grid.clock import SimClock
from grid.config import SiteConfig, load_site
from mcp_server.http import BackgroundServer, http_app
from tests.services.mosquitto import MosquittoServer
from tests.services.process import free_port

EXAMPLE = Path(__file__).parents[2] / "examples" / "site.toml"
SPEED = 10.0


def site_for(root: Path, broker_url: str) -> SiteConfig:
    site = load_site(EXAMPLE)
    settings = site.settings.model_copy(
        update={
            "store_url": f"sqlite:///{root / 'gridpilot.db'}",
            "state_dir": root / "state",
            "broker_url": broker_url,
        }
    )
    return site.model_copy(update={"settings": settings})


def site_file_for(root: Path, broker_url: str) -> Path:
    """The example site file with its store, state and broker moved into `root`."""
    text = EXAMPLE.read_text()
    text = text.replace(
        'store_url = "sqlite:///../var/gridpilot.db"',
        f'store_url = "sqlite:///{root / "gridpilot.db"}"',
    )
    text = text.replace('state_dir = "../var"', f'state_dir = "{root / "state"}"')
    text = text.replace('broker_url = "embedded"', f'broker_url = "{broker_url}"')
    path = root / "site.toml"
    path.write_text(text)
    return path


def stdio_server(site_file: Path) -> StdioServerParameters:
    """`gridpilot mcp stdio` for a test site file, simulator on, clock at SPEED."""
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "grid",
            "mcp",
            "stdio",
            "--site",
            str(site_file),
            "--speed",
            str(SPEED),
            "--simulate",
        ],
    )


def wait_for_telemetry(rt: Runtime, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snap = rt.snapshot()
        if all(age is not None for age in snap.telemetry_age_s.values()) and (
            snap.soc_fraction.get("battery") is not None
        ):
            return
        time.sleep(0.1)
    raise TimeoutError("no telemetry from every asset")


def wait_until_trusted(rt: Runtime, timeout_s: float = 60.0) -> None:
    """Until the store holds enough readings for the anomaly interlock to trust every
    asset an automated caller may aim at, so each refusal comes from the rule aimed at."""
    a = rt.site.assets
    assets = [x.id for x in (*a.batteries, *a.pv, *a.loads)]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = rt.clock.now()
        if all(
            assess(rt.site, rt.store, x, now, registry_dir=rt.models_dir).trustworthy
            for x in assets
        ):
            return
        time.sleep(0.5)
    raise TimeoutError("assets not trusted by the anomaly interlock in time")


class CommandSpy:
    """Counts every command published to any device of the site, straight off the broker."""

    def __init__(self, url: str, site: str) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._client = make_client(url, f"security-spy-{free_port()}")
        self._client.on_connect = lambda c, *_: c.subscribe(f"gridpilot/{site}/+/cmd", qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._seen
        connect(self._client, url)
        if not self._ready.wait(10):
            raise TimeoutError("the command spy could not subscribe")

    def _seen(self, *_: Any) -> None:
        with self._lock:
            self.count += 1

    def settled(self, expected: int, timeout_s: float = 5.0, quiet_s: float = 0.2) -> int:
        """The count once `expected` commands arrived (or the timeout passed) and no more
        came for `quiet_s`: the spy's subscription can deliver after the device acked."""
        deadline = time.monotonic() + timeout_s
        while self.count < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = -1
        while seen != self.count:
            seen = self.count
            time.sleep(quiet_s)
        return seen

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path_factory.mktemp("mcp-mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory, broker: MosquittoServer) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("mcp-site")
    rt = open_runtime(site_for(root, broker.url), clock=SimClock(speed=SPEED), simulate=True)
    wait_for_telemetry(rt)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def endpoint(runtime: Runtime) -> Iterator[str]:
    """The runtime's MCP server over streamable HTTP on a free loopback port."""
    port = free_port()
    server = BackgroundServer(http_app(runtime, "127.0.0.1", port), "127.0.0.1", port)
    server.start()
    yield f"http://127.0.0.1:{port}/mcp"
    server.stop()
