"""An embedded MQTT broker (amqtt) on loopback, so `gridpilot demo` needs no service.

amqtt's `Broker` must be created inside a running event loop, and the gateway and
twins are blocking paho clients; so the broker gets a thread with its own loop,
and nothing blocking ever runs on that loop. Deployed sites use Mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

from edge.mqtt import BrokerUnavailable

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready: Future[None] = Future()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._serve, name="gridpilot-broker", daemon=True)
        self._thread.start()
        try:
            self._ready.result(timeout=timeout_s)
        except Exception as exc:
            raise BrokerUnavailable(f"embedded broker on port {self.port} failed: {exc}") from exc
        log.info("embedded MQTT broker at %s", self.url)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._broker is not None:
            done = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                done.result(timeout=10)
            except Exception:  # shutting down anyway
                log.exception("embedded broker shutdown")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_broker())
            self._ready.set_result(None)
        except BaseException as exc:
            self._ready.set_exception(exc)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _start_broker(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        await self._broker.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Starting blocks briefly (the broker's own thread), so not on this loop.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
