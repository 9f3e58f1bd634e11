"""A running site for the agent tests: real mosquitto, the simulator, the gateway and
SQLite, on a simulated clock 30 times faster than the wall, served over streamable
HTTP on loopback by a server the tests can stop and start again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.runtime import Runtime, open_runtime
from grid.clock import SimClock
from mcp_server.http import BackgroundServer, http_app
from tests.mcp_server.conftest import broker, site_for, wait_for_telemetry
from tests.services.process import free_port

__all__ = ["broker"]
SPEED = 30.0


class Endpoint:
    """The MCP HTTP server on a fixed loopback port, restartable."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._server: BackgroundServer | None = None

    def start(self) -> None:
        app = http_app(self.runtime, "127.0.0.1", self.port)
        self._server = BackgroundServer(app, "127.0.0.1", self.port)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def wait_for_history(rt: Runtime, timeout_s: float = 20.0) -> None:
    """Until the store holds the battery's readings: the anomaly interlock judges an
    asset by its stored history, and refuses automated callers without one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = rt.clock.now()
        if rt.store.query(
            rt.site.site.name, "battery", "soc_fraction", now - timedelta(minutes=1), now
        ):
            return
        time.sleep(0.2)
    raise TimeoutError("no stored battery history")


@pytest.fixture(scope="module")
def site_runtime(tmp_path_factory: pytest.TempPathFactory, broker) -> Iterator[Runtime]:
    root: Path = tmp_path_factory.mktemp("agents-site")
    rt = open_runtime(site_for(root, broker.url), clock=SimClock(speed=SPEED), simulate=True)
    wait_for_telemetry(rt)
    wait_for_history(rt)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def endpoint(site_runtime: Runtime) -> Iterator[Endpoint]:
    ep = Endpoint(site_runtime)
    ep.start()
    yield ep
    ep.stop()
