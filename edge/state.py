"""The live state cache: what the gateway last heard from each device.

Tools, the dashboard and the guardrails read it; only the gateway writes it. One
lock guards it, and readers get copies, so nobody sees a half-applied update. The
copies are shallow: a writer replaces a device's `state` dict, never changes one in
place, so a reader's copy keeps the dict it was given (a deep copy of every device was
70 % of a `grid_state` call).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from grid.telemetry import Measurement


class DeviceState(BaseModel):
    device: str
    kind: str
    online: bool = False
    last_seen: datetime | None = None
    state: dict[str, Any] = {}


class LiveState:
    def __init__(self, devices: dict[str, str]) -> None:
        """`devices` maps each device id of the site to its kind."""
        self._lock = threading.Lock()
        self._devices = {d: DeviceState(device=d, kind=k) for d, k in devices.items()}
        self._latest: dict[tuple[str, str], Measurement] = {}

    def device(self, device_id: str) -> DeviceState | None:
        with self._lock:
            found = self._devices.get(device_id)
            return found.model_copy() if found else None

    def snapshot(self) -> dict[str, DeviceState]:
        with self._lock:
            return {d: s.model_copy() for d, s in self._devices.items()}

    def latest(self, asset: str, quantity: str) -> Measurement | None:
        with self._lock:
            return self._latest.get((asset, quantity))

    def latest_all(self) -> list[Measurement]:
        with self._lock:
            return sorted(self._latest.values(), key=lambda m: (m.asset, m.quantity))

    def age_s(self, asset: str, quantity: str, now: datetime) -> float | None:
        found = self.latest(asset, quantity)
        return None if found is None else (now - found.time).total_seconds()

    # -- written by the gateway only -------------------------------------------

    def seen(self, device_id: str, when: datetime, points: list[Measurement]) -> bool:
        """Record telemetry; True when this brought the device back online."""
        with self._lock:
            state = self._devices[device_id]
            came_back = not state.online
            state.online = True
            if state.last_seen is None or when > state.last_seen:
                state.last_seen = when
            for point in points:
                key = (point.asset, point.quantity)
                old = self._latest.get(key)
                if old is None or point.time >= old.time:
                    self._latest[key] = point
            return came_back

    def set_state(self, device_id: str, state: dict[str, Any], when: datetime | None) -> None:
        with self._lock:
            entry = self._devices[device_id]
            entry.state = dict(state)
            if when is not None and (entry.last_seen is None or when > entry.last_seen):
                entry.last_seen = when

    def set_online(self, device_id: str, online: bool) -> bool:
        """True when this changed the device's online flag."""
        with self._lock:
            entry = self._devices[device_id]
            changed = entry.online != online
            entry.online = online
            return changed
