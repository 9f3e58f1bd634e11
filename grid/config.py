"""The site described in TOML, loaded once into pydantic models.

After `load_site` returns, the rest of the code trusts the types: every limit,
reference between sections and unit has been checked here, and a bad file gets a
`ConfigError` that names the field, the value and the rule it broke.
"""

from __future__ import annotations

import csv
import hashlib
import math
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from grid.errors import ConfigError

# Identifiers travel into MQTT topics, InfluxQL and SQL: keeping them to this
# alphabet is what makes those places safe without escaping.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveKw = Annotated[float, Field(gt=0.0, le=100_000.0)]
Role = Literal["viewer", "agent", "daemon", "operator", "admin"]
DeviceKind = Literal["relay_board", "battery_inverter", "pv_inverter", "meter", "peaker"]


class _Model(BaseModel):
    # inf and nan are valid TOML but no valid cost, limit or rating.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SiteInfo(_Model):
    name: Ident
    timezone: str = "UTC"
    step_s: Annotated[int, Field(ge=60, le=3600)] = 900
    # Where the sun is: the simulator and PV profiles use it for solar time.
    latitude_deg: Annotated[float, Field(ge=-66.0, le=66.0)] = 50.0
    longitude_deg: Annotated[float, Field(ge=-180.0, le=180.0)] = 10.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("step_s")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError("must divide a day (86400 s) evenly, e.g. 300, 900 or 3600")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class GridConnection(_Model):
    import_limit_kw: PositiveKw
    export_limit_kw: Annotated[float, Field(ge=0.0, le=100_000.0)]
    meter: Ident | None = None


class Battery(_Model):
    id: Ident
    device: Ident
    capacity_kwh: Annotated[float, Field(gt=0.0, le=1_000_000.0)]
    max_charge_kw: PositiveKw
    max_discharge_kw: PositiveKw
    charge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    discharge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    soc_min_fraction: Fraction = 0.1
    soc_max_fraction: Fraction = 0.9
    initial_soc_fraction: Fraction = 0.5
    degradation_cost_eur_per_kwh: Annotated[float, Field(ge=0.0)] = 0.02
    # SoC the battery must hold at each site-local midnight (a contract or a reserve for
    # the night); plans keep it, the closed loop counts the days that miss it.
    end_of_day_soc_fraction: Fraction | None = None

    @model_validator(mode="after")
    def _soc_window(self) -> Self:
        floor = self.end_of_day_soc_fraction
        if floor is not None and not self.soc_min_fraction <= floor <= self.soc_max_fraction:
            raise ValueError(
                f"end_of_day_soc_fraction ({floor}) must lie within "
                f"[{self.soc_min_fraction}, {self.soc_max_fraction}]"
            )
        if self.soc_min_fraction >= self.soc_max_fraction:
            raise ValueError(
                f"soc_min_fraction ({self.soc_min_fraction}) must be below "
                f"soc_max_fraction ({self.soc_max_fraction})"
            )
        if not self.soc_min_fraction <= self.initial_soc_fraction <= self.soc_max_fraction:
            raise ValueError(
                f"initial_soc_fraction ({self.initial_soc_fraction}) must lie within "
                f"[{self.soc_min_fraction}, {self.soc_max_fraction}]"
            )
        return self


class PV(_Model):
    id: Ident
    device: Ident
    peak_kw: PositiveKw
    curtailable: bool = True


class Load(_Model):
    id: Ident
    # The relay that switches it; a load with neither is metered only: forecast and
    # planned for, never switched (served in full like a critical load).
    board: Ident | None = None
    channel: Annotated[int, Field(ge=1, le=16)] | None = None
    nominal_kw: PositiveKw
    priority: Annotated[int, Field(ge=1, le=10, description="1 = shed first, 10 = shed last")]
    critical: bool = False
    # The demand shape the simulator and synthetic training data give this load.
    profile: Literal["flat", "server", "refrigeration", "ev", "office"] = "flat"
    value_of_lost_load_eur_per_kwh: Annotated[float, Field(ge=0.0)] = 1.0

    @model_validator(mode="after")
    def _relay_complete(self) -> Self:
        if (self.board is None) != (self.channel is None):
            raise ValueError("give both board and channel (a relay) or neither (metered only)")
        return self

    @property
    def switchable(self) -> bool:
        return self.board is not None

    @property
    def must_serve(self) -> bool:
        """Critical, or without a relay to shed it by."""
        return self.critical or not self.switchable


class Peaker(_Model):
    id: Ident
    device: Ident
    min_kw: Annotated[float, Field(ge=0.0)]
    max_kw: PositiveKw
    start_cost_eur: Annotated[float, Field(ge=0.0)] = 0.0
    fuel_cost_eur_per_kwh: Annotated[float, Field(ge=0.0)]
    min_up_s: Annotated[int, Field(ge=0, le=86_400)] = 0
    min_down_s: Annotated[int, Field(ge=0, le=86_400)] = 0
    ramp_kw_per_min: Annotated[float, Field(gt=0.0)] | None = None
    startup_delay_s: Annotated[int, Field(ge=0, le=3600)] = 60

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.min_kw > self.max_kw:
            raise ValueError(f"min_kw ({self.min_kw}) must not exceed max_kw ({self.max_kw})")
        return self


class Assets(_Model):
    batteries: list[Battery] = []
    pv: list[PV] = []
    loads: list[Load] = []
    peakers: list[Peaker] = []


class TouPeriod(_Model):
    """A price that applies every day from `start` (inclusive) to `end` (exclusive)."""

    start: time
    end: time
    price_eur_per_kwh: Annotated[float, Field(ge=-10.0, le=10.0)]

    def covers(self, at: time) -> bool:
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # wraps past midnight


def _check_day_covered(periods: list[TouPeriod], which: str) -> None:
    if not periods:
        return
    for minute in range(0, 24 * 60):
        at = time(minute // 60, minute % 60)
        hits = sum(p.covers(at) for p in periods)
        if hits != 1:
            what = "no period" if hits == 0 else f"{hits} periods"
            raise ValueError(
                f"{which} periods must cover each minute of the day exactly once; "
                f"{at:%H:%M} is covered by {what}"
            )


class PriceSeries(_Model):
    """A CSV of prices (day-ahead, dynamic): where it has a row at or before a time, it
    overrides the time-of-use periods. Times are ISO 8601; a time without an offset is
    read in the site's time zone. The column names are the file's own."""

    path: Path
    time_column: str = "time"
    import_column: str = "import_eur_per_kwh"
    export_column: str | None = "export_eur_per_kwh"  # None: no export payment
    unit: Literal["EUR/kWh", "EUR/MWh"] = "EUR/kWh"


class Tariff(_Model):
    currency: Literal["EUR"] = "EUR"
    import_periods: list[TouPeriod] = []
    export_periods: list[TouPeriod] = []
    # `price_series = "prices.csv"` (columns as in PriceSeries) or a table with a
    # column map: `[tariff.price_series]` path, time_column, import_column, ...
    price_series: PriceSeries | None = None
    # Per kW of each billing period's peak import, charged once per period: a plan pays
    # the full rate on any increase over the peak the period has reached so far.
    demand_charge_eur_per_kw: Annotated[float, Field(ge=0.0)] = 0.0
    # "month" or "day" (site-local calendar), or a whole number of days counted from
    # `billing_anchor` (site-local midnight).
    billing_period: Literal["month", "day"] | Annotated[int, Field(ge=1, le=366)] = "month"
    billing_anchor: date = date(2026, 1, 1)

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("price_series"), str | Path):
                data["price_series"] = {"path": data["price_series"]}
            if "demand_charge_eur_per_kw_month" in data:  # the name before billing periods
                if data.get("billing_period", "month") != "month":
                    raise ValueError(
                        "demand_charge_eur_per_kw_month needs billing_period = 'month'; "
                        "give demand_charge_eur_per_kw (per billing period) instead"
                    )
                data["demand_charge_eur_per_kw"] = data.pop("demand_charge_eur_per_kw_month")
        return data

    @model_validator(mode="after")
    def _prices_defined(self) -> Self:
        if not self.import_periods and self.price_series is None:
            raise ValueError("give import_periods or a price_series file")
        _check_day_covered(self.import_periods, "import")
        _check_day_covered(self.export_periods, "export")
        return self


class Device(_Model):
    id: Ident
    kind: DeviceKind
    mqtt_client_id: Ident | None = None
    channels: Annotated[int, Field(ge=1, le=16)] = 4
    # Relay state the board falls back to when it hears no gateway heartbeat.
    safe_state: list[bool] | None = None
    revert_s: Annotated[int, Field(ge=5, le=3600)] = 60

    @model_validator(mode="after")
    def _safe_state_fits(self) -> Self:
        if self.safe_state is not None and len(self.safe_state) != self.channels:
            raise ValueError(
                f"safe_state has {len(self.safe_state)} entries but the device has "
                f"{self.channels} channels"
            )
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt_client_id or self.id


class Principal(_Model):
    name: Ident
    role: Role
    # Tokens are long random strings, so an unsalted SHA-256 is enough to make a
    # leaked site file useless for logging in.
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    # Lease ceilings; unset means the role's default (guardrails.principals.LEASE_LIMITS).
    max_lease_priority: Annotated[int, Field(ge=0, le=100)] | None = None
    max_lease_s: Annotated[float, Field(gt=0.0, le=86_400.0)] | None = None


class PolicyLimits(_Model):
    stale_telemetry_s: Annotated[int, Field(ge=1, le=86_400)] = 120
    relay_min_dwell_s: Annotated[int, Field(ge=0, le=86_400)] = 60
    relay_max_switches_per_hour: Annotated[int, Field(ge=1, le=3600)] = 6
    actions_per_minute_per_principal: Annotated[int, Field(ge=1, le=10_000)] = 30
    confirm_roles: list[Role] = ["operator", "admin"]
    automated_hours: tuple[time, time] | None = None
    ack_timeout_s: Annotated[float, Field(gt=0.0, le=120.0)] = 5.0
    plan_ttl_s: Annotated[int, Field(ge=10, le=86_400)] = 900


# Plausible range of a reading by the unit its name ends in; the site file's
# `[ingest.limits]` narrows (or widens) it per quantity.
_DEFAULT_LIMITS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("_eur_per_kwh", (-10.0, 10.0)),
    ("_fraction", (0.0, 1.0)),
    ("_kwh", (-1e12, 1e12)),
    ("_kw", (-100_000.0, 100_000.0)),
    ("_hz", (0.0, 1_000.0)),
    ("_v", (0.0, 1e6)),
    ("_a", (-1e6, 1e6)),
    ("_c", (-100.0, 300.0)),
    ("_s", (0.0, 1e9)),
)
_OTHER_LIMITS = (-1e6, 1e6)  # flags and counters (relay_on, running)


class IngestLimits(_Model):
    """What the gateway accepts from a device before anything is stored."""

    max_future_s: Annotated[float, Field(ge=0.0, le=86_400.0)] = 300.0
    # Older readings are refused: a device's backlog after an outage fits in a week.
    max_past_s: Annotated[float, Field(gt=0.0, le=366 * 86_400.0)] = 7 * 86_400.0
    max_message_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 64 * 1024
    max_values_per_message: Annotated[int, Field(ge=1, le=10_000)] = 64
    max_series_per_device: Annotated[int, Field(ge=1, le=100_000)] = 256
    # A sequence number further than this from the last one needs a second,
    # consecutive message to be believed (a device reboot, or a forged number).
    seq_window: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000
    limits: dict[str, tuple[float, float]] = {}

    @field_validator("limits")
    @classmethod
    def _ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(f"{name} = [{low}, {high}]: want two finite numbers, low <= high")
        return value

    def range_of(self, quantity: str) -> tuple[float, float]:
        if quantity in self.limits:
            return self.limits[quantity]
        for suffix, bounds in _DEFAULT_LIMITS:
            if quantity.endswith(suffix):
                return bounds
        return _OTHER_LIMITS


class Settings(_Model):
    store_url: str = "sqlite:///gridpilot.db"
    broker_url: str = "embedded"
    stdio_principal: Ident | None = None
    # Audit log, pending commands, halt flag, write spool and models live here.
    state_dir: Path = Path("var")

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "influxdb://", "influxdbs://")):
            raise ValueError("must start with sqlite:///, influxdb:// or influxdbs://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must be 'embedded' or start with mqtt:// or mqtts://")
        return value


class SiteConfig(_Model):
    site: SiteInfo
    grid: GridConnection
    assets: Assets = Assets()
    tariff: Tariff
    devices: list[Device] = []
    principals: list[Principal] = []
    policy: PolicyLimits = PolicyLimits()
    ingest: IngestLimits = IngestLimits()
    settings: Settings = Settings()

    @model_validator(mode="after")
    def _references(self) -> Self:
        # Every problem is collected, so `config check` lists them all at once.
        problems: list[str] = []
        devices = {d.id: d for d in self.devices}
        _unique(problems, "devices", [d.id for d in self.devices])
        _unique(problems, "principals", [p.name for p in self.principals])
        _unique(
            problems,
            "assets",
            [
                a.id
                for group in (
                    self.assets.batteries,
                    self.assets.pv,
                    self.assets.loads,
                    self.assets.peakers,
                )
                for a in group
            ],
        )
        wants = {
            "battery_inverter": [
                (f"assets.batteries[{b.id}].device", b.device) for b in self.assets.batteries
            ],
            "pv_inverter": [(f"assets.pv[{p.id}].device", p.device) for p in self.assets.pv],
            "peaker": [(f"assets.peakers[{p.id}].device", p.device) for p in self.assets.peakers],
            "relay_board": [
                (f"assets.loads[{ld.id}].board", ld.board)
                for ld in self.assets.loads
                if ld.board is not None
            ],
            "meter": [("grid.meter", self.grid.meter)] if self.grid.meter else [],
        }
        for kind, refs in wants.items():
            for where, ref in refs:
                if ref not in devices:
                    problems.append(f"{where} = {ref!r} names no device in [[devices]]")
                elif devices[ref].kind != kind:
                    problems.append(
                        f"{where} = {ref!r} must be a {kind}, but that device is a "
                        f"{devices[ref].kind}"
                    )
        seen: dict[tuple[str, int], str] = {}
        for load in self.assets.loads:
            if load.board is None or load.channel is None:
                continue  # a metered load with no relay
            board = devices.get(load.board)
            if board is None:
                continue  # reported above: names no device
            if load.channel > board.channels:
                problems.append(
                    f"assets.loads[{load.id}].channel = {load.channel} exceeds the "
                    f"{board.channels} channels of board {board.id!r}"
                )
            other = seen.setdefault((load.board, load.channel), load.id)
            if other != load.id:
                problems.append(
                    f"assets.loads[{load.id}] and assets.loads[{other}] share "
                    f"channel {load.channel} of board {load.board!r}"
                )
        _unique(
            problems,
            "principal tokens",
            [p.token_sha256 for p in self.principals if p.token_sha256],
        )
        stdio = self.settings.stdio_principal
        if stdio is not None and stdio not in {p.name for p in self.principals}:
            problems.append(f"settings.stdio_principal = {stdio!r} names no principal")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def device(self, device_id: str) -> Device:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def load(self, load_id: str) -> Load:
        for load in self.assets.loads:
            if load.id == load_id:
                return load
        raise KeyError(load_id)

    def asset_ids(self) -> set[str]:
        a = self.assets
        return {x.id for x in (*a.batteries, *a.pv, *a.loads, *a.peakers)}

    def principal(self, name: str) -> Principal:
        for principal in self.principals:
            if principal.name == name:
                return principal
        raise KeyError(name)


def _unique(problems: list[str], what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            problems.append(f"{what} must be unique; {value!r} appears twice")
        seen.add(value)


def hash_token(token: str) -> str:
    """The form in which a bearer token is written into the site file."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_toml(path: Path, what: str) -> dict:
    """A TOML file's content, or a ConfigError naming the file and what is wrong."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: UTF-16 text; TOML files must be UTF-8 (save it as UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
            f"a {what} file is TOML"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: contains NUL bytes; a {what} file is TOML text")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate a site file; relative paths in it are taken from its folder."""
    path = Path(path)
    return parse_site(read_toml(path, "site"), base_dir=path.parent, source=str(path))


def parse_site(raw: dict, base_dir: Path = Path("."), source: str = "<site>") -> SiteConfig:
    try:
        site = SiteConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    return _resolve_paths(site, base_dir)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: where, the value given, and the rule it broke."""
    lines = [f"{source}: {exc.error_count()} problem(s)"]
    for err in exc.errors(include_url=False):
        where = (
            "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"]
            ).lstrip(".")
            or "(top level)"
        )
        msg = err["msg"].removeprefix("Value error, ")
        if "\n" in msg:  # a model check that found several problems: one line each
            prefix = "" if where == "(top level)" else f"{where}: "
            lines.extend(f"  {prefix}{line}" for line in msg.splitlines())
        elif err["type"] == "missing":
            lines.append(f"  {where}: required field is missing")
        elif err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown field (check the spelling)")
        else:
            shown = err.get("input")
            given = "" if isinstance(shown, dict) else f" = {shown!r}"
            lines.append(f"  {where}{given}: {msg}")
    return "\n".join(lines)


def _resolve_paths(site: SiteConfig, base_dir: Path) -> SiteConfig:
    updates: dict = {}
    series = site.tariff.price_series
    if series is not None and not series.path.is_absolute():
        series = series.model_copy(update={"path": (base_dir / series.path).resolve()})
        updates["tariff"] = site.tariff.model_copy(update={"price_series": series})
    url = site.settings.store_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        db = Path(url.removeprefix("sqlite:///"))
        if not db.is_absolute():
            db = (base_dir / db).resolve()
            updates["settings"] = site.settings.model_copy(update={"store_url": f"sqlite:///{db}"})
    state_dir = site.settings.state_dir
    if not state_dir.is_absolute():
        settings = updates.get("settings", site.settings)
        updates["settings"] = settings.model_copy(
            update={"state_dir": (base_dir / state_dir).resolve()}
        )
    site = site.model_copy(update=updates) if updates else site
    series = site.tariff.price_series
    if series is not None and not series.path.exists():
        raise ConfigError(f"tariff.price_series.path = {str(series.path)!r}: no such file")
    return site


def read_price_series(
    series: PriceSeries, tz: ZoneInfo | None = None
) -> list[tuple[datetime, float, float]]:
    """Rows of (aware time, import, export) in EUR/kWh, sorted by time."""
    scale = 0.001 if series.unit == "EUR/MWh" else 1.0
    rows = []
    with series.path.open(newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=2):
            try:
                when = datetime.fromisoformat(row[series.time_column])
                export = row[series.export_column] if series.export_column else ""
                rows.append(
                    (
                        when if when.tzinfo else when.replace(tzinfo=tz or UTC),
                        float(row[series.import_column]) * scale,
                        float(export or 0.0) * scale,
                    )
                )
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"{series.path}:{n}: bad price row ({exc})") from None
    return sorted(rows)
