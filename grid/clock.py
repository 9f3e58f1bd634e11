"""One clock for every timed part: real time, or simulated time for tests and the demo.

`SimClock(speed=N)` runs N times faster than the wall; `SimClock()` stands still
until `advance()` moves it, which lets a test step through a day deterministically.
Sleeping on a simulated clock waits for simulated time, so a daemon that sleeps
15 minutes wakes after 15 simulated minutes however fast the clock runs.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """The current time as seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def sleep_sync(self, seconds: float) -> None:
        """For threads (MQTT callbacks, device twins) that are not on an event loop."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def sleep_sync(self, seconds: float) -> None:
        _time.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time starting at `start`; `speed=None` means it moves only by `advance`."""

    # How often a sleeper on a manual clock looks again; short, since tests step fast.
    _POLL_S = 0.002

    def __init__(self, start: datetime | None = None, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        start = start or datetime(2026, 1, 5, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start_epoch = start.timestamp()
        self._speed = speed
        self._wall0 = _time.monotonic()
        self._offset_s = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float | None:
        return self._speed

    def time(self) -> float:
        with self._lock:
            running = (
                0.0 if self._speed is None else (_time.monotonic() - self._wall0) * self._speed
            )
            return self._start_epoch + running + self._offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float | timedelta) -> None:
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if seconds < 0:
            raise ValueError("time does not run backwards")
        with self._lock:
            self._offset_s += seconds

    def _wall_wait(self, deadline: float) -> float:
        remaining = deadline - self.time()
        if remaining <= 0:
            return 0.0
        if self._speed is None:
            return self._POLL_S
        return min(remaining / self._speed, 0.5)

    async def sleep(self, seconds: float) -> None:
        deadline = self.time() + max(0.0, seconds)
        while (wait := self._wall_wait(deadline)) > 0:
            await anyio.sleep(wait)

    def sleep_sync(self, seconds: float) -> None:
        deadline = self.time() + max(0.0, seconds)
        while (wait := self._wall_wait(deadline)) > 0:
            _time.sleep(wait)
