"""The site-wide halt. Kept in a file so a restart does not silently resume."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel


class HaltState(BaseModel):
    halted: bool = False
    by: str | None = None
    reason: str = ""
    since: datetime | None = None


class KillSwitch:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state = HaltState()
        if path.exists():
            self._state = HaltState.model_validate(json.loads(path.read_text()))

    @property
    def state(self) -> HaltState:
        with self._lock:
            return self._state

    def set(self, state: HaltState) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(state.model_dump_json())
            os.replace(tmp, self.path)
            self._state = state
