"""Several daemons at once, each with its own session and identity, on one event loop
in a thread of their own: how `gridpilot demo` runs them beside the server."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import anyio

from agents.client import Session, Target
from agents.daemon import Outcome, run

log = logging.getLogger(__name__)


class Fleet:
    """`Fleet([(daemon, target), ...]).start()`; `stop()` releases their leases."""

    def __init__(self, members: list[tuple[Any, Target]], journal_size: int = 200) -> None:
        self.members = members
        self.journal: deque[Outcome] = deque(maxlen=journal_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridpilot-agents", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        try:
            anyio.run(self._main)
        except Exception:  # the demo goes on without its daemons rather than crash
            log.exception("the agent fleet stopped")

    async def _main(self) -> None:
        async with anyio.create_task_group() as tg:
            for daemon, target in self.members:
                tg.start_soon(self._one, daemon, target)
            while not self._stop.is_set():
                await anyio.sleep(0.2)
            tg.cancel_scope.cancel()

    async def _one(self, daemon: Any, target: Target) -> None:
        async with Session(target) as session:
            await run(daemon, session, journal=self.journal)
