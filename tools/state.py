"""Read-only tools: the live state, the assets, stored history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from grid.telemetry import Aggregate
from guardrails.principals import Caller, Capability
from tools import fields
from tools.context import Runtime

MAX_HISTORY_POINTS = 5_000


class AssetInfo(BaseModel):
    id: str
    kind: Literal["battery", "pv", "load", "peaker", "grid"]
    device: str
    rating: str = Field(description="Nameplate summary with units")
    critical: bool = False
    priority: int | None = Field(None, description="Loads: 1 = shed first, 10 = shed last")
    limits: dict[str, float] = Field(description="Physical limits, units in the key names")


class AssetList(BaseModel):
    site: str
    timezone: str
    step_s: int
    assets: list[AssetInfo]


def list_assets(rt: Runtime, caller: Caller) -> AssetList:
    rt.actuator.require(caller, Capability.READ, "list_assets", {})
    site, a = rt.site, rt.site.assets
    out: list[AssetInfo] = []
    for b in a.batteries:
        out.append(
            AssetInfo(
                id=b.id,
                kind="battery",
                device=b.device,
                rating=f"{b.capacity_kwh:g} kWh, {b.max_charge_kw:g} kW charge / "
                f"{b.max_discharge_kw:g} kW discharge",
                limits={
                    "capacity_kwh": b.capacity_kwh,
                    "max_charge_kw": b.max_charge_kw,
                    "max_discharge_kw": b.max_discharge_kw,
                    "soc_min_fraction": b.soc_min_fraction,
                    "soc_max_fraction": b.soc_max_fraction,
                },
            )
        )
    for p in a.pv:
        out.append(
            AssetInfo(
                id=p.id,
                kind="pv",
                device=p.device,
                rating=f"{p.peak_kw:g} kWp",
                limits={"peak_kw": p.peak_kw, "curtailable": float(p.curtailable)},
            )
        )
    for ld in a.loads:
        out.append(
            AssetInfo(
                id=ld.id,
                kind="load",
                device=f"{ld.board}#{ld.channel}" if ld.switchable else "metered (no relay)",
                rating=f"{ld.nominal_kw:g} kW ({ld.profile})",
                critical=ld.critical,
                priority=ld.priority,
                limits={"nominal_kw": ld.nominal_kw},
            )
        )
    for g in a.peakers:
        out.append(
            AssetInfo(
                id=g.id,
                kind="peaker",
                device=g.device,
                rating=f"{g.min_kw:g}-{g.max_kw:g} kW gas",
                limits={
                    "min_kw": g.min_kw,
                    "max_kw": g.max_kw,
                    "min_up_s": g.min_up_s,
                    "min_down_s": g.min_down_s,
                    "fuel_cost_eur_per_kwh": g.fuel_cost_eur_per_kwh,
                },
            )
        )
    out.append(
        AssetInfo(
            id="grid",
            kind="grid",
            device=site.grid.meter or "-",
            rating=f"import ≤ {site.grid.import_limit_kw:g} kW, export ≤ "
            f"{site.grid.export_limit_kw:g} kW",
            limits={
                "import_limit_kw": site.grid.import_limit_kw,
                "export_limit_kw": site.grid.export_limit_kw,
            },
        )
    )
    return AssetList(
        site=site.site.name, timezone=site.site.timezone, step_s=site.site.step_s, assets=out
    )


class RelayState(BaseModel):
    load: str
    on: bool | None
    critical: bool
    power_kw: float | None


class GridState(BaseModel):
    time: datetime
    site: str
    grid_import_kw: float | None = Field(description="+ import from the grid, - export")
    load_kw: float | None = Field(description="Sum of metered loads")
    pv_kw: float | None
    battery_kw: dict[str, float | None] = Field(description="+ discharging, - charging")
    soc_fraction: dict[str, float | None]
    peaker_kw: dict[str, float | None]
    relays: list[RelayState]
    frequency_hz: float | None
    voltage_v: float | None
    import_price_eur_per_kwh: float | None
    devices_online: dict[str, bool]
    oldest_telemetry_s: float | None = Field(description="Age of the stalest asset reading")
    halted: bool
    halt_reason: str = ""
    leases: list[str] = Field(description="Active leases: asset -> holder (priority)")


def _latest(rt: Runtime, asset: str, quantity: str) -> float | None:
    found = rt.live.latest(asset, quantity)
    return None if found is None else round(found.value, 4)


def _total(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def grid_state(rt: Runtime, caller: Caller) -> GridState:
    rt.actuator.require(caller, Capability.READ, "grid_state", {})
    snap = rt.snapshot()
    a = rt.site.assets
    halt = rt.actuator.killswitch.state
    ages = [age for age in snap.telemetry_age_s.values() if age is not None]
    return GridState(
        time=snap.now,
        site=rt.site.site.name,
        grid_import_kw=snap.grid_import_kw,
        load_kw=_total([_latest(rt, ld.id, "power_kw") for ld in a.loads]),
        pv_kw=_total([_latest(rt, p.id, "power_kw") for p in a.pv]),
        battery_kw=snap.battery_kw,
        soc_fraction=snap.soc_fraction,
        peaker_kw={g.id: _latest(rt, g.id, "power_kw") for g in a.peakers},
        relays=[
            RelayState(
                load=ld.id,
                on=snap.relay_on.get(ld.id),
                critical=ld.critical,
                power_kw=_latest(rt, ld.id, "power_kw"),
            )
            for ld in a.loads
        ],
        frequency_hz=_latest(rt, "grid", "frequency_hz"),
        voltage_v=_latest(rt, "grid", "voltage_v"),
        import_price_eur_per_kwh=_latest(rt, "tariff", "import_price_eur_per_kwh"),
        devices_online=snap.device_online,
        oldest_telemetry_s=round(max(ages), 1) if ages else None,
        halted=halt.halted,
        halt_reason=halt.reason,
        leases=[
            f"{lease.asset} -> {lease.holder} ({lease.priority})"
            for lease in rt.actuator.leases.all()
        ],
    )


class HistoryRequest(BaseModel):
    asset: fields.Id("Asset id from list_assets, or 'grid'/'tariff'")
    quantity: fields.Id("e.g. power_kw, soc_fraction, frequency_hz")
    hours: fields.Number("How far back, in hours", ge=0, gt=0, le=24 * 31) = 24
    window_s: Annotated[
        int | None,
        Field(
            strict=True,
            ge=1,
            le=86_400,
            description="Aggregate per window of this many seconds; null for raw points",
        ),
    ] = 900
    aggregate: Annotated[Aggregate, Field(description="How each window is summarised")] = "mean"

    @field_validator("asset")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str | None:
        site = (info.context or {}).get("site")
        if site is not None and value in {d.id for d in site.devices}:
            return value  # answered with a hint rather than refused: see grid_history
        return fields.check_id(value, info, "asset", fields.history_sources)

    @model_validator(mode="after")
    def _bounded(self) -> HistoryRequest:
        if self.window_s is None and self.hours > 6:
            raise ValueError(
                "raw points (window_s null) are limited to hours <= 6; give window_s "
                "to aggregate longer spans"
            )
        if self.window_s is not None and self.hours * 3600 / self.window_s > MAX_HISTORY_POINTS:
            raise ValueError(
                f"hours={self.hours:g} at window_s={self.window_s} gives more than "
                f"{MAX_HISTORY_POINTS} points; use a larger window_s"
            )
        return self


class HistoryResult(BaseModel):
    asset: str
    quantity: str
    unit: str
    start: datetime
    end: datetime
    window_s: int | None
    aggregate: str
    times: list[datetime]
    values: list[float]
    note: str | None = Field(None, description="Why nothing came back, when nothing did")


def grid_history(rt: Runtime, caller: Caller, req: HistoryRequest) -> HistoryResult:
    rt.actuator.require(caller, Capability.READ, "grid_history", req.model_dump())
    end = rt.clock.now()
    start = end - timedelta(hours=req.hours)
    samples = rt.store.query(
        rt.site.site.name,
        req.asset,
        req.quantity,
        start,
        end,
        window_s=req.window_s,
        aggregate=req.aggregate,
    )
    samples = samples[-MAX_HISTORY_POINTS:]
    latest = rt.live.latest(req.asset, req.quantity)
    note = None
    if not samples:
        note = _empty_note(rt, req)
    return HistoryResult(
        asset=req.asset,
        quantity=req.quantity,
        unit=latest.unit if latest else "",
        start=start,
        end=end,
        window_s=req.window_s,
        aggregate=req.aggregate,
        times=[s.time for s in samples],
        values=[round(s.value, 4) for s in samples],
        note=note,
    )


def _empty_note(rt: Runtime, req: HistoryRequest) -> str:
    site, a = rt.site, rt.site.assets
    if req.asset in {d.id for d in site.devices}:
        on_it = [x.id for x in (*a.batteries, *a.pv, *a.peakers) if x.device == req.asset]
        on_it += [ld.id for ld in a.loads if ld.board == req.asset]
        if site.grid.meter == req.asset:
            on_it.append("grid")
        return (
            f"{req.asset!r} is a device id; history is kept per asset: use "
            f"{', '.join(on_it) or 'an asset id from list_assets'}"
        )
    return (
        f"no {req.quantity} stored for {req.asset} in the last {req.hours:g} h; "
        "see grid_state for the quantities it reports"
    )
