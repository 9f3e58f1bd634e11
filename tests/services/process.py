"""Starting and stopping a real server binary for a test, on loopback only."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str, *candidates: str) -> str:
    """The binary's path; a missing one skips the test, or fails it under
    GRIDPILOT_REQUIRE_SERVICES=1 (CI), so CI can never pass by skipping."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
    message = f"{name} is not installed (apt-get install it, or run `make test`, which installs it)"
    if os.environ.get("GRIDPILOT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"GRIDPILOT_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s} s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    """A server started from `argv`, restartable on the same ports and data."""

    def __init__(self, argv: list[str], log_path: Path, ready: Callable[[], bool], name: str):
        self.argv = argv
        self.log_path = log_path
        self._ready = ready
        self.name = name
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_until(self._ready, timeout_s, self.name)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start; its log:\n{self.log_path.read_text()[-3000:]}"
            ) from None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
