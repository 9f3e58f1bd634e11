"""A real InfluxDB 1.x (`influxd`, Debian package `influxdb`) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.services.process import ServerProcess, free_port, require_binary

_CONFIG = """\
bind-address = "127.0.0.1:{rpc_port}"
reporting-disabled = true
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[continuous_queries]
  enabled = false
"""


class InfluxServer(ServerProcess):
    def __init__(self, root: Path) -> None:
        binary = require_binary("influxd")
        self.http_port = free_port()
        config = root / "influxdb.conf"
        config.write_text(_CONFIG.format(root=root, rpc_port=free_port(), http_port=self.http_port))
        super().__init__(
            [binary, "run", "-config", str(config)], root / "influxd.log", self._pinged, "influxd"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def url(self, database: str) -> str:
        """A gridpilot store URL that creates the database on first use."""
        return f"influxdb://127.0.0.1:{self.http_port}/{database}?create=1"

    def _pinged(self) -> bool:
        try:
            return httpx2.get(f"{self.base_url}/ping", timeout=0.5).status_code == 204
        except httpx2.TransportError:
            return False


def start_influx(root: Path) -> InfluxServer:
    root.mkdir(parents=True, exist_ok=True)
    server = InfluxServer(root)
    server.start()
    return server


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the whole session; tests use their own databases."""
    server = start_influx(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxServer]:
    """An influxd of this test's own, for tests that stop and restart it."""
    server = start_influx(tmp_path / "influxd")
    yield server
    server.stop()
