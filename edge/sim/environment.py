"""The simulator's world: demand, PV and prices from `grid.profiles`, and the grid's
voltage and frequency at the connection point."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from grid.config import SiteConfig
from grid.profiles import SiteProfiles, generate

NOMINAL_VOLTAGE_V = 230.0
NOMINAL_FREQUENCY_HZ = 50.0
CHUNK_STEPS = 720  # profile steps generated at a time


class Profiles:
    """Profile values on the simulator's step grid, generated a chunk at a time (a
    whole day at a 5 s step costs as much to generate as an hour)."""

    def __init__(self, site: SiteConfig, origin_s: float, interval_s: int, seed: int) -> None:
        self.site = site
        self.origin_s = origin_s
        self.interval_s = interval_s
        self.seed = seed
        self._chunk_index = -1
        self._chunk: SiteProfiles | None = None

    def at(self, now_s: float) -> tuple[SiteProfiles, int]:
        """The chunk holding `now_s` and the index of its step within it."""
        step = max(0, math.floor((now_s - self.origin_s) / self.interval_s + 1e-9))
        chunk_index, offset = divmod(step, CHUNK_STEPS)
        if chunk_index != self._chunk_index or self._chunk is None:
            start_s = self.origin_s + chunk_index * CHUNK_STEPS * self.interval_s
            self._chunk = generate(
                self.site,
                datetime.fromtimestamp(start_s, UTC),
                CHUNK_STEPS,
                step_s=self.interval_s,
                seed=self.seed,
            )
            self._chunk_index = chunk_index
        return self._chunk, offset


class GridModel:
    """Voltage sags with import along the feeder; frequency dips when the site's net
    load jumps and recovers as the grid's primary control answers."""

    def __init__(self, site: SiteConfig, rng: np.random.Generator) -> None:
        self.scale_kw = max(site.grid.import_limit_kw, 1.0)
        self.rng = rng
        self.deviation_hz = 0.0
        self.last_net_kw: float | None = None

    def step(
        self, net_kw: float, voltage_factor: float, sag_hz: float = 0.0
    ) -> tuple[float, float]:
        """(voltage_v, frequency_hz) for this step's net import. `sag_hz`: a weak grid
        whose frequency falls by that much per import limit of the site's net import, so
        importing less (battery, peaker, shedding) is what brings it back."""
        jump = 0.0 if self.last_net_kw is None else (net_kw - self.last_net_kw) / self.scale_kw
        self.last_net_kw = net_kw
        self.deviation_hz = 0.7 * self.deviation_hz - 0.5 * jump + self.rng.normal(0.0, 0.004)
        self.deviation_hz = max(-2.0, min(2.0, self.deviation_hz))
        voltage = NOMINAL_VOLTAGE_V * (1.0 - 0.02 * net_kw / self.scale_kw)
        voltage = voltage * voltage_factor + self.rng.normal(0.0, 0.4)
        sag = sag_hz * max(0.0, net_kw) / self.scale_kw
        return voltage, NOMINAL_FREQUENCY_HZ + self.deviation_hz - sag
