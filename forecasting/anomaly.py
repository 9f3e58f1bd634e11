"""Which telemetry to trust: physical-range and consistency checks per asset, a
residual detector for false data, and an IsolationForest over the site's vectors.

`assess` answers the guardrails' question "may automated actions rely on this
asset's data now?"; `scan` looks over a window and writes anomaly events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.ensemble import IsolationForest

from grid.config import SiteConfig
from grid.profiles import solar_elevation_sin
from grid.store import Store
from grid.telemetry import Event, Sample, Severity

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


def _bounds(site: SiteConfig, asset: str) -> tuple[str, float, float] | None:
    """(quantity, low, high) of the asset's main reading, from its ratings."""
    for ld in site.assets.loads:
        if ld.id == asset:
            return "power_kw", -0.05, ld.nominal_kw * 1.3
    for p in site.assets.pv:
        if p.id == asset:
            return "power_kw", -0.05, p.peak_kw * 1.1
    for b in site.assets.batteries:
        if b.id == asset:
            return "soc_fraction", 0.0, 1.0
    for g in site.assets.peakers:
        if g.id == asset:
            return "power_kw", -0.05, g.max_kw * 1.1
    return None


def check_series(site: SiteConfig, asset: str, samples: list[Sample]) -> list[Finding]:
    """Rule findings over one asset's raw samples, oldest first."""
    spec = _bounds(site, asset)
    if spec is None or not samples:
        return []
    quantity, low, high = spec
    out: list[Finding] = []
    values = np.array([s.value for s in samples])
    times = [s.time for s in samples]
    for t, v in zip(times, values, strict=True):
        if not low <= v <= high:
            out.append(
                Finding(
                    asset=asset,
                    quantity=quantity,
                    time=t,
                    score=1.0,
                    reason=f"{quantity} = {v:.3f} outside its physical range [{low:g}, {high:g}]",
                )
            )
            break
    run = 1
    for i in range(1, len(values)):
        run = run + 1 if values[i] == values[i - 1] and abs(values[i]) > 1e-6 else 1
        if run == STUCK_SAMPLES:
            out.append(
                Finding(
                    asset=asset,
                    quantity=quantity,
                    time=times[i],
                    score=0.9,
                    reason=f"stuck sensor: {STUCK_SAMPLES} identical readings of {values[i]:.4f}",
                )
            )
            break
    battery = next((b for b in site.assets.batteries if b.id == asset), None)
    if battery is not None and len(values) > 1:
        for i in range(1, len(values)):
            dt_h = max((times[i] - times[i - 1]).total_seconds(), 1.0) / 3600
            possible = (
                max(battery.max_charge_kw, battery.max_discharge_kw)
                * dt_h
                / (battery.capacity_kwh)
                * 1.5
                + 0.01
            )
            if abs(values[i] - values[i - 1]) > possible:
                out.append(
                    Finding(
                        asset=asset,
                        quantity=quantity,
                        time=times[i],
                        score=0.95,
                        reason=f"SoC jumped {values[i] - values[i - 1]:+.3f} in "
                        f"{dt_h * 3600:.0f} s; at most {possible:.3f} is possible",
                    )
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
            i = over[0]
            out.append(
                Finding(
                    asset=asset,
                    quantity=quantity,
                    time=times[i],
                    score=0.95,
                    reason=f"PV reads {values[i]:.2f} kW, above the clear-sky "
                    f"ceiling {ceiling[i]:.2f} kW (false data?)",
                )
            )
    return out


def seasonal_residuals(
    samples: list[Sample], day_ago: list[Sample], step_s: int = 300
) -> list[tuple[datetime, float]]:
    """Robust z-scores of (value - same time yesterday), per window of `step_s`: the
    residual detector for false data that stays inside physical limits."""
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
    z = (residual - residual.median()) / scale
    return [(t.to_pydatetime(), float(v)) for t, v in z.items() if abs(v) > ROBUST_Z_ALARM]


def assess(
    site: SiteConfig, store: Store, asset: str, now: datetime, registry_dir: Path | None = None
) -> Trust:
    """Is this asset's data trustworthy now? Checks the last 30 minutes of its main
    reading, and alarms already recorded for it in that time."""
    spec = _bounds(site, asset)
    if spec is None:
        return Trust(trustworthy=True, score=0.0, reason=f"no checks defined for {asset}")
    start = now - WINDOW
    samples = store.query(site.site.name, asset, spec[0], start, now + timedelta(seconds=1))
    findings = check_series(site, asset, samples)
    alarms = [
        e
        for e in store.query_events(site.site.name, start, now + timedelta(seconds=1), asset=asset)
        if e.kind in ("anomaly", "fault") and e.severity is Severity.ALARM
    ]
    if findings:
        worst = max(findings, key=lambda f: f.score)
        return Trust(trustworthy=False, score=worst.score, reason=worst.reason)
    if alarms:
        return Trust(
            trustworthy=False,
            score=0.9,
            reason=f"anomaly alarm at {alarms[-1].time:%H:%M:%S}Z: {alarms[-1].message}",
        )
    return Trust(
        trustworthy=True,
        score=0.0,
        reason=f"{len(samples)} readings in the last 30 min pass every check",
    )


def site_vectors(
    site: SiteConfig, store: Store, start: datetime, end: datetime, window_s: int = 60
) -> pd.DataFrame:
    """One row per window: grid power, voltage, frequency, total load, PV, battery SoC."""
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
    for asset in assets:
        quantity = _bounds(site, asset)[0]  # type: ignore[index]
        samples = store.query(name, asset, quantity, start, end)
        for f in check_series(site, asset, samples):
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
