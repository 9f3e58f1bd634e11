"""A real headless Chromium on a free loopback DevTools port, driven over the Chrome
DevTools Protocol (CDP) with `websockets`: navigate, evaluate JavaScript, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.services.process import ServerProcess, free_port, port_open, require_binary


class Chromium(ServerProcess):
    def __init__(self, root: Path, width: int = 1400, height: int = 1800) -> None:
        binary = require_binary("chromium", "chromium-browser", "google-chrome")
        self.port = free_port()
        argv = [
            binary,
            "--headless",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={self.port}",
            f"--user-data-dir={root / 'profile'}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox
            argv.insert(1, "--no-sandbox")
        super().__init__(argv, root / "chromium.log", lambda: port_open(self.port), "chromium")

    def page(self) -> Page:
        targets = httpx2.get(f"http://127.0.0.1:{self.port}/json/list", timeout=10).json()
        first = next(t for t in targets if t["type"] == "page")
        return Page(connect(first["webSocketDebuggerUrl"], max_size=64 * 2**20))


class Page:
    """One browser tab. Only the few CDP commands the tests need."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            message = json.loads(self._ws.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float, what: str) -> Any:
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is still loading
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"{what} not seen after {timeout_s} s")

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self._ws.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    root = tmp_path / "chromium"
    root.mkdir()
    browser = Chromium(root)
    browser.start()
    yield browser
    browser.stop()
