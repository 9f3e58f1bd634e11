"""A real Mosquitto broker on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.process import ServerProcess, free_port, port_open, require_binary


class MosquittoServer(ServerProcess):
    def __init__(
        self,
        root: Path,
        persistence: bool = False,
        auth: str = "allow_anonymous true\n",
        extra_config: str = "",
    ) -> None:
        """`auth`: the access lines of the config (password_file, acl_file, ...);
        `extra_config`: further broker settings (queue limits for the benches)."""
        binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self.port = free_port()
        config = root / "mosquitto.conf"
        if persistence:
            # Sessions and queued QoS 1 messages survive a restart. As root mosquitto
            # would drop to the `mosquitto` user, which cannot write the test's temp
            # dir; `user root` keeps it (and is ignored when not started as root).
            stored = f"persistence true\npersistence_location {root}/\nuser root\n"
        else:
            stored = "persistence false\n"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n{auth}{stored}log_dest stdout\n"
            # as a deployed broker should be: small control messages are not held back
            "set_tcp_nodelay true\n" + extra_config
        )
        super().__init__(
            [binary, "-c", str(config)],
            root / "mosquitto.log",
            lambda: port_open(self.port),
            "mosquitto",
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    root = tmp_path / "mosquitto"
    root.mkdir()
    server = MosquittoServer(root)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker that keeps sessions and queued QoS 1 messages across `stop()`/`start()`."""
    root = tmp_path / "mosquitto-persistent"
    root.mkdir()
    server = MosquittoServer(root, persistence=True)
    server.start()
    yield server
    server.stop()
