"""What an agent sees of the site: the parts of `grid_state` and `list_assets` the
daemons decide on, parsed once at the boundary (extra fields are ignored, so the
server may add fields without breaking a daemon)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Relay(_View):
    load: str
    on: bool | None
    critical: bool
    power_kw: float | None = None


class State(_View):
    time: datetime
    grid_import_kw: float | None
    load_kw: float | None = None
    pv_kw: float | None = None
    battery_kw: dict[str, float | None] = {}
    soc_fraction: dict[str, float | None] = {}
    peaker_kw: dict[str, float | None] = {}
    relays: list[Relay] = []
    frequency_hz: float | None = None
    halted: bool = False
    leases: list[str] = []

    def relay_on(self, load: str) -> bool | None:
        return next((r.on for r in self.relays if r.load == load), None)


class Asset(_View):
    id: str
    kind: str
    critical: bool = False
    priority: int | None = None
    limits: dict[str, float] = {}


class Assets(_View):
    step_s: int
    assets: list[Asset]

    def of(self, kind: str) -> list[Asset]:
        return [a for a in self.assets if a.kind == kind]

    @property
    def import_limit_kw(self) -> float:
        return self.of("grid")[0].limits["import_limit_kw"]

    @property
    def export_limit_kw(self) -> float:
        return self.of("grid")[0].limits["export_limit_kw"]

    def sheddable(self) -> list[Asset]:
        """Loads an agent may switch off, the first to shed first (lowest priority)."""
        return sorted((a for a in self.of("load") if not a.critical), key=lambda a: a.priority or 0)


def parse_state(data: dict[str, Any] | None) -> State:
    return State.model_validate(data or {})


def parse_assets(data: dict[str, Any] | None) -> Assets:
    return Assets.model_validate(data or {})
