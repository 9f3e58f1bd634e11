"""Which telemetry to trust: physical-range and consistency checks per asset, a
residual detector for false data, and an IsolationForest over the site's vectors.

`assess` answers the guardrails' question "may automated actions rely on this
asset's data now?"; `scan` looks over a window and writes anomaly events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from grid.config import SiteConfig
from grid.profiles import solar_elevation_sin
from grid.store import Store
from grid.telemetry import Event, Sample, Severity

if TYPE_CHECKING:
    import pandas as pd

WINDOW = timedelta(minutes=30)
STUCK_SAMPLES = 10  # identical non-zero readings in a row that mean a frozen sensor
ROBUST_Z_ALARM = 6.0


class Trust(BaseModel):
    trustworthy: bool
    score: float  # 0 = fine, 1 = certainly wrong
    reason: str


class Finding(BaseModel):
    asset: str
    quantity: str
    time: datetime
    score: float
    reason: str


# Readings that stay constant on a healthy device (an idle battery's SoC, a steady
# temperature or voltage): a run of equal values there is not a stuck sensor.
MAY_HOLD_STILL = {"soc_fraction", "temperature_c", "voltage_v", "frequency_hz"}
NOMINAL_V = 230.0


def checks(site: SiteConfig, asset: str) -> list[tuple[str, float, float]]:
    """(quantity, low, high) for each reading checked on an asset; the main one first."""
    for ld in site.assets.loads:
        if ld.id == asset:
            return [("power_kw", -0.05, ld.nominal_kw * 1.3)]
    for p in site.assets.pv:
        if p.id == asset:
            return [("power_kw", -0.05, p.peak_kw * 1.1)]
    for b in site.assets.batteries:
        if b.id == asset:
            return [("soc_fraction", 0.0, 1.0), ("temperature_c", -20.0, 55.0)]
    for g in site.assets.peakers:
        if g.id == asset:
            return [("power_kw", -0.05, g.max_kw * 1.1)]
    if asset == "grid":  # EN 50160: supply voltage within +-10 % of nominal
        return [("voltage_v", NOMINAL_V * 0.9, NOMINAL_V * 1.1), ("frequency_hz", 49.0, 51.0)]
    return []


# The reading a device reports of what it was commanded to hold: a PV inverter's
# curtailment limit, a peaker's setpoint. Output steady at that value is regulation.
COMMANDED = {"pv_inverter": "limit_kw", "peaker": "setpoint_kw"}


def _commanded_quantity(site: SiteConfig, asset: str) -> str | None:
    if any(p.id == asset for p in site.assets.pv):
        return COMMANDED["pv_inverter"]
    if any(g.id == asset for g in site.assets.peakers):
        return COMMANDED["peaker"]
    return None


def check_series(
    site: SiteConfig,
    asset: str,
    quantity: str,
    low: float,
    high: float,
    samples: list[Sample],
    commanded: Sequence[Sample] = (),
) -> list[Finding]:
    """Rule findings over one reading's raw samples, oldest first. `commanded`: the
    samples of the value the device was told to hold (see COMMANDED), if any."""
    if not samples:
        return []
    out: list[Finding] = []
    values = np.array([s.value for s in samples])
    times = [s.time for s in samples]

    def found(i: int, score: float, reason: str) -> None:
        out.append(
            Finding(asset=asset, quantity=quantity, time=times[i], score=score, reason=reason)
        )

    outside = np.nonzero((values < low) | (values > high))[0]
    if len(outside):
        i = int(outside[0])
        found(i, 1.0, f"{quantity} = {values[i]:.3f} outside its range [{low:g}, {high:g}]")
    if quantity not in MAY_HOLD_STILL:
        run = 1
        for i in range(1, len(values)):
            same = values[i] == values[i - 1] and abs(values[i]) > 1e-6
            run = run + 1 if same else 1
            if run == STUCK_SAMPLES:
                told = [c.value for c in commanded if c.time <= times[i]]
                if told and abs(told[-1] - values[i]) < 1e-3:
                    run = 1  # holding its commanded value, as told
                    continue
                found(
                    i, 0.9, f"stuck sensor: {STUCK_SAMPLES} identical readings of {values[i]:.4f}"
                )
                break
    battery = next((b for b in site.assets.batteries if b.id == asset), None)
    if battery is not None and quantity == "soc_fraction":
        for i in range(1, len(values)):
            dt_h = max((times[i] - times[i - 1]).total_seconds(), 1.0) / 3600
            rate = max(battery.max_charge_kw, battery.max_discharge_kw)
            possible = rate * dt_h / battery.capacity_kwh * 1.5 + 0.01
            if abs(values[i] - values[i - 1]) > possible:
                found(
                    i,
                    0.95,
                    f"SoC jumped {values[i] - values[i - 1]:+.3f} in "
                    f"{dt_h * 3600:.0f} s; at most {possible:.3f} is possible",
                )
                break
    pv = next((p for p in site.assets.pv if p.id == asset), None)
    if pv is not None:
        sun = np.clip(
            solar_elevation_sin(times, site.site.latitude_deg, site.site.longitude_deg), 0, None
        )
        ceiling = pv.peak_kw * 0.85 * sun**1.2 * 1.25 + 0.3
        over = np.nonzero(values > ceiling)[0]
        if len(over):
            i = int(over[0])
            found(
                i,
                0.95,
                f"PV reads {values[i]:.2f} kW, above the clear-sky ceiling "
                f"{ceiling[i]:.2f} kW (false data?)",
            )
    return out


def seasonal_residuals(
    samples: list[Sample], day_ago: list[Sample], step_s: int = 300
) -> list[tuple[datetime, float]]:
    """Robust z-scores of (value - same time yesterday), per window of `step_s`: the
    residual detector for false data that stays inside physical limits."""
    import pandas as pd  # heavy: loaded on the first scan, not when the server starts

    now = pd.Series({s.time: s.value for s in samples}, dtype=float)
    before = pd.Series({s.time + timedelta(days=1): s.value for s in day_ago}, dtype=float)
    if now.empty or before.empty:
        return []
    freq = f"{step_s}s"
    residual = (now.resample(freq).mean() - before.resample(freq).mean()).dropna()
    if len(residual) < 12:
        return []
    mad = float(np.median(np.abs(residual - residual.median()))) * 1.4826
    scale = max(mad, 0.05 * float(np.abs(now).max() + 0.1))
    z = residual / scale  # a healthy residual centres on zero, not on this window
    return [(t.to_pydatetime(), float(v)) for t, v in z.items() if abs(v) > ROBUST_Z_ALARM]


def assess(
    site: SiteConfig, store: Store, asset: str, now: datetime, registry_dir: Path | None = None
) -> Trust:
    """Is this asset's data trustworthy now? Checks the last 30 minutes of its readings,
    and alarms already recorded for it in that time."""
    specs = checks(site, asset)
    if not specs:
        return Trust(trustworthy=True, score=0.0, reason=f"no checks defined for {asset}")
    start, end = now - WINDOW, now + timedelta(seconds=1)
    findings: list[Finding] = []
    main: list[Sample] = []
    for n, (quantity, low, high) in enumerate(specs):
        samples = store.query(site.site.name, asset, quantity, start, end)
        commanded: list[Sample] = []
        if n == 0:
            main = samples
            if reference := _commanded_quantity(site, asset):
                commanded = store.query(site.site.name, asset, reference, start, end)
        findings += check_series(site, asset, quantity, low, high, samples, commanded)
    silent_s = (now - main[-1].time).total_seconds() if main else WINDOW.total_seconds()
    if silent_s > site.policy.stale_telemetry_s:
        return Trust(
            trustworthy=False,
            score=1.0,
            reason=f"no {specs[0][0]} reading for {silent_s:.0f} s (limit "
            f"{site.policy.stale_telemetry_s} s): sensor dropped or device offline",
        )
    if findings:
        worst = max(findings, key=lambda f: f.score)
        return Trust(trustworthy=False, score=worst.score, reason=worst.reason)
    alarms = [
        e
        for e in store.query_events(site.site.name, start, end, asset=asset)
        if e.kind in ("anomaly", "fault") and e.severity is Severity.ALARM
    ]
    if alarms:
        last = alarms[-1]
        return Trust(
            trustworthy=False,
            score=0.9,
            reason=f"anomaly alarm at {last.time:%H:%M:%S}Z: {last.message}",
        )
    return Trust(
        trustworthy=True,
        score=0.0,
        reason=f"{len(main)} readings in the last 30 min pass every check",
    )


def site_vectors(
    site: SiteConfig, store: Store, start: datetime, end: datetime, window_s: int = 60
) -> pd.DataFrame:
    """One row per window: grid power, voltage, frequency, total load, PV, battery SoC."""
    import pandas as pd

    name = site.site.name
    series = {
        "grid_kw": ("grid", "power_kw"),
        "voltage_v": ("grid", "voltage_v"),
        "frequency_hz": ("grid", "frequency_hz"),
    }
    series |= {f"load:{ld.id}": (ld.id, "power_kw") for ld in site.assets.loads}
    series |= {f"pv:{p.id}": (p.id, "power_kw") for p in site.assets.pv}
    series |= {f"soc:{b.id}": (b.id, "soc_fraction") for b in site.assets.batteries}
    columns = {}
    for column, (asset, quantity) in series.items():
        samples = store.query(name, asset, quantity, start, end, window_s=window_s)
        columns[column] = pd.Series({s.time: s.value for s in samples}, dtype=float)
    return pd.DataFrame(columns).sort_index()


def scan(
    site: SiteConfig,
    store: Store,
    start: datetime,
    end: datetime,
    *,
    write: bool = True,
    contamination: float = 0.01,
    seed: int = 0,
) -> list[Event]:
    """Anomaly events for the window: rule findings per asset (alarms) and rows the
    IsolationForest isolates (warnings); written to the store unless `write=False`."""
    events: list[Event] = []
    name = site.site.name
    assets = [
        *(ld.id for ld in site.assets.loads),
        *(p.id for p in site.assets.pv),
        *(b.id for b in site.assets.batteries),
        *(g.id for g in site.assets.peakers),
    ]
    for asset in [*assets, "grid"]:
        for quantity, low, high in checks(site, asset):
            samples = store.query(name, asset, quantity, start, end)
            for f in check_series(site, asset, quantity, low, high, samples):
                events.append(
                    Event(
                        site=name,
                        kind="anomaly",
                        asset=asset,
                        time=f.time,
                        severity=Severity.ALARM,
                        message=f.reason,
                        data={"score": f.score, "quantity": f.quantity, "detector": "rules"},
                    )
                )
            if quantity in MAY_HOLD_STILL:
                continue
            history = store.query(
                name, asset, quantity, start - timedelta(days=1), end - timedelta(days=1)
            )
            for when, z in seasonal_residuals(samples, history)[:1]:
                events.append(
                    Event(
                        site=name,
                        kind="anomaly",
                        asset=asset,
                        time=when,
                        severity=Severity.WARNING,
                        message=f"{quantity} far from the same time yesterday (robust z = {z:.1f})",
                        data={
                            "score": min(1.0, abs(z) / 20),
                            "quantity": quantity,
                            "detector": "seasonal_residual",
                        },
                    )
                )
    frame = site_vectors(site, store, start, end).dropna()
    if len(frame) >= 50:
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(contamination=contamination, random_state=seed, n_jobs=1)
        values = frame.to_numpy()
        scaled = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-9)
        labels = forest.fit_predict(scaled)
        scores = forest.score_samples(scaled)
        for when, label, score, row in zip(frame.index, labels, scores, scaled, strict=True):
            if label == -1:
                column = frame.columns[int(np.argmax(np.abs(row)))]
                events.append(
                    Event(
                        site=name,
                        kind="anomaly",
                        time=when.to_pydatetime(),
                        severity=Severity.WARNING,
                        message=f"unusual site state (isolation score {score:.3f}); most unusual: "
                        f"{column}",
                        data={
                            "score": float(-score),
                            "detector": "isolation_forest",
                            "column": column,
                        },
                    )
                )
    if write and events:
        store.write_events(events)
    return sorted(events, key=lambda e: e.time)
