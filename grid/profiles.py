"""Deterministic demand, PV and price series for a site: the "weather" of the simulator.

The site simulator (edge/sim), synthetic training data (forecasting) and the
closed-loop benchmark (optimization) all draw from these functions, so a model
trained on them and a plan tested against them see the same world.

Randomness is seeded per (seed, day, asset): a given instant gets the same value
whatever window it is generated in, so overlapping windows agree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from grid.config import Load, SiteConfig
from grid.tariff import prices_eur_per_kwh
from grid.telemetry import Measurement


@dataclass(frozen=True)
class SiteProfiles:
    times: list[datetime]  # UTC, start of each step
    step_s: int
    pv_kw: dict[str, np.ndarray]  # available PV output per PV asset, before curtailment
    load_kw: dict[str, np.ndarray]  # demand per load when its relay is on
    import_price_eur_per_kwh: np.ndarray
    export_price_eur_per_kwh: np.ndarray

    @property
    def total_load_kw(self) -> np.ndarray:
        return _sum(self.load_kw.values(), len(self.times))

    @property
    def total_pv_kw(self) -> np.ndarray:
        return _sum(self.pv_kw.values(), len(self.times))

    @property
    def net_load_kw(self) -> np.ndarray:
        return self.total_load_kw - self.total_pv_kw


def _sum(arrays, n: int) -> np.ndarray:
    total = np.zeros(n)
    for array in arrays:
        total = total + array
    return total


def _rng(seed: int, day: date, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, day.toordinal(), zlib.crc32(name.encode())])


def solar_elevation_sin(
    times: list[datetime], latitude_deg: float, longitude_deg: float
) -> np.ndarray:
    """Sine of the sun's elevation (negative at night), from solar time at the longitude."""
    doy = np.array([t.timetuple().tm_yday for t in times], dtype=float)
    hours_utc = np.array([t.hour + t.minute / 60 + t.second / 3600 for t in times])
    solar_hour = hours_utc + longitude_deg / 15.0
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.radians(15.0 * (solar_hour - 12.0))
    lat = np.radians(latitude_deg)
    return np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(
        hour_angle
    )


def _cloud_factor(n: int, rng: np.random.Generator, noisy: bool = True) -> np.ndarray:
    """Share of clear-sky output that gets through: a day-level cloudiness plus an
    AR(1) process for passing clouds, clipped to [0.05, 1]."""
    day_level = rng.choice([0.95, 0.8, 0.55, 0.3], p=[0.45, 0.3, 0.15, 0.1])
    noise = np.zeros(n)
    state = 0.0
    for i in range(n if noisy else 0):
        state = 0.9 * state + rng.normal(0.0, 0.08)
        noise[i] = state
    return np.clip(day_level + noise, 0.05, 1.0)


def _load_shape(
    load: Load, local_hours: np.ndarray, weekday: int, rng: np.random.Generator, noisy: bool
) -> np.ndarray:
    """Fraction of nominal power drawn, by the load's profile, for one local day."""
    h = local_hours
    workday = weekday < 5
    n = len(h)
    if load.profile == "server":
        shape = 0.8 + 0.05 * np.sin(2 * np.pi * (h - 15) / 24)
        noise = 0.02
    elif load.profile == "refrigeration":
        shape = 0.55 + 0.2 * np.sin(2 * np.pi * (h - 9) / 24)
        noise = 0.08  # compressor cycling
    elif load.profile == "ev":
        if workday:
            shape = 0.85 * np.exp(-((h - 9.5) ** 2) / 4.0) + 0.35 * np.exp(-((h - 18) ** 2) / 3.0)
        else:
            shape = 0.2 * np.exp(-((h - 13) ** 2) / 8.0)
        noise = 0.1
    elif load.profile == "office":
        occupied = (h >= 7) & (h < 19) if workday else np.zeros(n, dtype=bool)
        shape = np.where(occupied, 0.55 + 0.35 * np.sin(np.pi * (h - 7) / 12), 0.12)
        noise = 0.05
    else:
        shape = np.full(n, 0.7)
        noise = 0.03
    return np.clip(shape + (rng.normal(0.0, noise, n) if noisy else 0.0), 0.0, 1.0)


def generate(
    site: SiteConfig,
    start: datetime,
    steps: int,
    step_s: int | None = None,
    seed: int = 0,
    noisy: bool = True,
) -> SiteProfiles:
    """Series of `steps` steps from `start` (aware), at `step_s` (default: the site's).
    `noisy=False` leaves out the step-to-step noise (passing clouds, load jitter) and
    keeps each day's cloudiness: the most any forecaster could know of the series."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    step_s = step_s or site.site.step_s
    start = start.astimezone(UTC)
    times = [start + timedelta(seconds=i * step_s) for i in range(steps)]
    tz = site.site.tz
    local = [t.astimezone(tz) for t in times]
    days = np.array([t.date().toordinal() for t in local])

    elevation = np.clip(
        solar_elevation_sin(times, site.site.latitude_deg, site.site.longitude_deg), 0.0, None
    )
    # Noise is drawn for a whole local day on the step grid and then picked from, so
    # an instant's value does not depend on where the requested window starts.
    slots = np.array([(t.hour * 3600 + t.minute * 60 + t.second) // step_s for t in local])
    day_slots = 86_400 // step_s + 1
    day_hours = np.arange(day_slots) * step_s / 3600.0
    pv_kw = {p.id: np.zeros(steps) for p in site.assets.pv}
    load_kw = {ld.id: np.zeros(steps) for ld in site.assets.loads}
    for ordinal in np.unique(days):
        day = date.fromordinal(int(ordinal))
        idx = np.nonzero(days == ordinal)[0]
        for pv in site.assets.pv:
            clouds = _cloud_factor(day_slots, _rng(seed, day, pv.id), noisy)[slots[idx]]
            pv_kw[pv.id][idx] = pv.peak_kw * 0.85 * elevation[idx] ** 1.2 * clouds
        for load in site.assets.loads:
            shape = _load_shape(load, day_hours, day.weekday(), _rng(seed, day, load.id), noisy)
            load_kw[load.id][idx] = load.nominal_kw * shape[slots[idx]]

    prices = np.array(prices_eur_per_kwh(site, times))
    return SiteProfiles(
        times=times,
        step_s=step_s,
        pv_kw=pv_kw,
        load_kw=load_kw,
        import_price_eur_per_kwh=prices[:, 0],
        export_price_eur_per_kwh=prices[:, 1],
    )


def as_telemetry(site: SiteConfig, profiles: SiteProfiles) -> list[Measurement]:
    """Every load's and PV array's power, and the meter's (`grid`, net import with no
    control), as the gateway would store them (`power_kw`), for seeding a store with
    history. Without the meter a plan would see no billing-period peak so far."""
    points = []
    for series in (profiles.load_kw, profiles.pv_kw, {"grid": profiles.net_load_kw}):
        for asset, values in series.items():
            points += [
                Measurement(
                    site=site.site.name,
                    asset=asset,
                    quantity="power_kw",
                    unit="kW",
                    value=float(values[i]),
                    time=t,
                )
                for i, t in enumerate(profiles.times)
            ]
    return points
