"""A site's own history from a CSV file: metered loads, PV, the grid meter and prices,
checked for units and time zone and put on the site's step.

The CSV has a time column and one column per series. `--map COLUMN=SERIES[:UNIT]`
says which column is which series; a column named like a series needs no map.
Series are the site's load and PV ids (kW), `grid` (the meter: net import, kW,
negative when exporting), `import_price` and `export_price` (EUR/kWh).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import BaseModel

from grid.config import SiteConfig
from grid.errors import ConfigError
from grid.profiles import SiteProfiles
from grid.store.base import Store
from grid.tariff import prices_eur_per_kwh
from grid.telemetry import Measurement

PRICE_SERIES = {
    "import_price": "import_price_eur_per_kwh",
    "export_price": "export_price_eur_per_kwh",
}
POWER_UNITS = {"kW": 1.0, "W": 0.001, "MW": 1000.0}
ENERGY_UNITS = {"kWh": 1.0, "Wh": 0.001}  # energy per row: divided by the row's hours
PRICE_UNITS = {"EUR/kWh": 1.0, "EUR/MWh": 0.001}
# A series this many times its asset's rating is almost surely in the wrong unit (W
# read as kW): refuse it rather than plan for it.
PLAUSIBLE_TIMES_RATING = 5.0


class Column(BaseModel):
    column: str
    series: str
    unit: str


class ImportReport(BaseModel):
    file: str
    rows: int
    start: datetime
    end: datetime
    step_s: int  # the file's own step (median spacing)
    columns: list[Column]
    duplicates: int  # rows with a time seen before (the last one is kept)
    gaps: int  # site steps with no row, filled by interpolation for planning
    time_zone: str  # the offsets in the file, or the zone naive times were read in


class SiteData(BaseModel):
    model_config = {"arbitrary_types_allowed": True}

    report: ImportReport
    frame: pd.DataFrame  # on the site's step, UTC index, one column per series

    def profiles(self, site: SiteConfig) -> SiteProfiles:
        """The data as the simulator's profiles: what the closed loop runs against."""
        frame = self.frame.interpolate(limit_direction="both")
        times = [t.to_pydatetime() for t in frame.index]
        tariff = np.array(prices_eur_per_kwh(site, times)) if times else np.zeros((0, 2))
        prices = {
            name: frame[name].to_numpy() if name in frame else tariff[:, i]
            for i, name in enumerate(PRICE_SERIES)
        }
        return SiteProfiles(
            times=times,
            step_s=site.site.step_s,
            pv_kw={p.id: frame[p.id].to_numpy().clip(0) for p in site.assets.pv},
            load_kw={ld.id: frame[ld.id].to_numpy().clip(0) for ld in site.assets.loads},
            import_price_eur_per_kwh=prices["import_price"],
            export_price_eur_per_kwh=prices["export_price"],
        )

    def measurements(self, site: SiteConfig) -> list[Measurement]:
        """What the store keeps: power per asset, the meter, prices (as the gateway and
        history_frame name them). Same times, same series: importing twice adds nothing."""
        names = _names(site)
        out = []
        for series in self.frame.columns:
            asset, quantity, unit = names[series]
            for when, value in self.frame[series].dropna().items():
                out.append(
                    Measurement(
                        site=site.site.name,
                        asset=asset,
                        quantity=quantity,
                        unit=unit,
                        value=float(value),
                        time=when.to_pydatetime(),
                    )
                )
        return out


def parse_map(items: list[str]) -> dict[str, tuple[str, str | None]]:
    """`COLUMN=SERIES[:UNIT]` items -> column: (series, unit or None)."""
    out: dict[str, tuple[str, str | None]] = {}
    for item in items:
        column, sep, target = item.partition("=")
        if not sep or not column or not target:
            raise ConfigError(f"--map {item!r}: write COLUMN=SERIES or COLUMN=SERIES:UNIT")
        series, _, unit = target.partition(":")
        out[column] = (series, unit or None)
    return out


def _scale(series: str, unit: str | None, column: str) -> tuple[str, float, bool]:
    """(unit, factor to kW or EUR/kWh, whether the unit is energy per row)."""
    if series in PRICE_SERIES:
        unit = unit or "EUR/kWh"
        if unit not in PRICE_UNITS:
            raise ConfigError(f"column {column!r}: price unit {unit!r}; one of {list(PRICE_UNITS)}")
        return unit, PRICE_UNITS[unit], False
    unit = unit or "kW"
    if unit in POWER_UNITS:
        return unit, POWER_UNITS[unit], False
    if unit in ENERGY_UNITS:
        return unit, ENERGY_UNITS[unit], True
    raise ConfigError(
        f"column {column!r}: unit {unit!r}; one of {list(POWER_UNITS) + list(ENERGY_UNITS)}"
    )


def _times(raw: list[str], tz: ZoneInfo, path: Path) -> tuple[pd.DatetimeIndex, str]:
    parsed, naive, aware = [], 0, 0
    for n, text in enumerate(raw, start=2):
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ConfigError(f"{path}:{n}: time {text!r} is not ISO 8601") from None
        if when.tzinfo is None:
            naive += 1
            # a local time the clocks skipped, or one they passed twice, cannot be placed
            back = when.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
            if back != when:
                raise ConfigError(
                    f"{path}:{n}: {text} does not exist in {tz.key} (clocks moved forward); "
                    "give times with a UTC offset"
                )
            when = when.replace(tzinfo=tz)
        else:
            aware += 1
        parsed.append(when.astimezone(UTC))
    if naive and aware:
        raise ConfigError(f"{path}: {naive} times have no UTC offset and {aware} do: mix of zones")
    return pd.DatetimeIndex(parsed), tz.key if naive else "offsets in the file"


def read_site_csv(
    path: Path,
    site: SiteConfig,
    mapping: dict[str, tuple[str, str | None]] | None = None,
    tz: str | None = None,
    time_column: str = "time",
) -> SiteData:
    """Read, check and put on the site's step (means over each step). Naive times are in
    `tz` (default: the site's zone)."""
    known = {ld.id for ld in site.assets.loads} | {p.id for p in site.assets.pv}
    known |= {"grid", *PRICE_SERIES}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        table = list(reader)
    if time_column not in header:
        raise ConfigError(f"{path}: no {time_column!r} column (columns: {', '.join(header)})")
    mapping = dict(mapping or {})
    for column in header:
        if column in known and column not in mapping:
            mapping[column] = (column, None)
    columns: list[Column] = []
    for column, (series, unit) in mapping.items():
        if column not in header:
            raise ConfigError(f"--map {column}=...: {path} has no column {column!r}")
        if series not in known:
            raise ConfigError(
                f"--map {column}={series}: {series!r} is not a load, PV, grid or price series "
                f"of site {site.site.name!r} ({', '.join(sorted(known))})"
            )
        columns.append(Column(column=column, series=series, unit=_scale(series, unit, column)[0]))
    if not columns:
        raise ConfigError(f"{path}: no column maps to a series; use --map COLUMN=SERIES")
    zone = ZoneInfo(tz) if tz else site.site.tz
    index, zone_note = _times([row[time_column] for row in table], zone, path)
    raw = pd.DataFrame(index=index)
    for col in columns:
        try:
            values = pd.to_numeric(pd.Series([row[col.column] for row in table]), errors="coerce")
        except KeyError:
            raise ConfigError(f"{path}: a row has no {col.column!r} value") from None
        raw[col.series] = values.to_numpy() * _scale(col.series, col.unit, col.column)[1]
    duplicates = int(raw.index.duplicated(keep="last").sum())
    raw = raw[~raw.index.duplicated(keep="last")].sort_index()
    if len(raw) < 2:
        raise ConfigError(f"{path}: {len(raw)} row(s); need at least two")
    file_step_s = int(pd.Series(raw.index).diff().median().total_seconds())
    ratings = {ld.id: ld.nominal_kw for ld in site.assets.loads}
    ratings |= {p.id: p.peak_kw for p in site.assets.pv}
    ratings["grid"] = max(site.grid.import_limit_kw, site.grid.export_limit_kw)
    for col in columns:
        if _scale(col.series, col.unit, col.column)[2]:  # energy per row -> mean power
            raw[col.series] = raw[col.series] / (file_step_s / 3600)
        if col.series not in PRICE_SERIES:
            top = float(raw[col.series].abs().max())
            limit = PLAUSIBLE_TIMES_RATING * ratings[col.series]
            if top > limit:
                raise ConfigError(
                    f"column {col.column!r} reaches {top:g} kW, over {PLAUSIBLE_TIMES_RATING:g}x "
                    f"the {ratings[col.series]:g} kW rating of {col.series} (limit {limit:g} kW): "
                    f"is it in W? write --map '{col.column}={col.series}:W'"
                )
            if col.series != "grid" and float(raw[col.series].min()) < -1e-6:
                raise ConfigError(
                    f"column {col.column!r} ({col.series}) has negative power "
                    f"({float(raw[col.series].min()):g} kW); loads and PV are >= 0"
                )
    step = f"{site.site.step_s}s"
    frame = raw.resample(step, origin="epoch").mean()
    if file_step_s > site.site.step_s:  # coarser data: each row's mean holds for its span
        frame = raw.resample(step, origin="epoch").ffill(limit=file_step_s // site.site.step_s)
    gaps = int(frame.isna().all(axis=1).sum())
    report = ImportReport(
        file=str(path),
        rows=len(table),
        start=raw.index[0].to_pydatetime(),
        end=raw.index[-1].to_pydatetime(),
        step_s=file_step_s,
        columns=columns,
        duplicates=duplicates,
        gaps=gaps,
        time_zone=zone_note,
    )
    return SiteData(report=report, frame=frame)


def missing_for_planning(site: SiteConfig, data: SiteData) -> list[str]:
    """Load and PV ids the data has no series for: the closed loop needs them all."""
    wanted = [ld.id for ld in site.assets.loads] + [p.id for p in site.assets.pv]
    return [k for k in wanted if k not in data.frame.columns]


def _names(site: SiteConfig) -> dict[str, tuple[str, str, str]]:
    """Series -> (asset, quantity, unit) as the store keeps it."""
    names = {ld.id: (ld.id, "power_kw", "kW") for ld in site.assets.loads}
    names |= {p.id: (p.id, "power_kw", "kW") for p in site.assets.pv}
    names["grid"] = ("grid", "power_kw", "kW")
    names |= {k: ("tariff", v, "EUR/kWh") for k, v in PRICE_SERIES.items()}
    return names


def stored_frame(site: SiteConfig, store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Every series of the site the store holds between start and end, step means."""
    step_s = site.site.step_s
    columns = {}
    for series, (asset, quantity, _) in _names(site).items():
        samples = store.query(site.site.name, asset, quantity, start, end, window_s=step_s)
        if samples:
            columns[series] = pd.Series({pd.Timestamp(s.time): s.value for s in samples})
    return pd.DataFrame(columns).sort_index()


def write_csv(path: Path, frame: pd.DataFrame, tz: ZoneInfo | None = None) -> int:
    """A frame (UTC index) to CSV with ISO times (in `tz` when given); rows written."""
    out = frame.copy()
    index = out.index if tz is None else out.index.tz_convert(tz)
    out.index = [t.isoformat() for t in index]
    out.index.name = "time"
    out.to_csv(path)
    return len(out)
