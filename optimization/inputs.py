"""What a plan is made from: forecasts, prices and the site's present state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Self

import numpy as np
from pydantic import BaseModel, Field, model_validator

from grid.config import SiteConfig
from grid.profiles import SiteProfiles
from grid.tariff import prices_eur_per_kwh

MAX_STEPS = 4 * 24 * 31  # a month at 15 min; larger models take minutes to solve


class InitialState(BaseModel):
    soc_fraction: dict[str, float]  # battery id -> SoC now
    relay_on: dict[str, bool]  # load id -> relay state now
    relay_on_since_s: dict[str, float] = {}  # load id -> seconds in its current state
    peaker_on: dict[str, bool] = {}
    peaker_state_s: dict[str, float] = {}  # seconds in the current on/off state
    peak_import_kw_so_far: Annotated[float, Field(ge=0)] = 0.0  # billing-period peak


class PlanInputs(BaseModel):
    start: datetime
    step_s: Annotated[int, Field(ge=60, le=3600)]
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)]
    load_kw: dict[str, list[float]]  # per load id: demand if its relay is on
    pv_kw: dict[str, list[float]]  # per PV id: available output
    import_price_eur_per_kwh: list[float]
    export_price_eur_per_kwh: list[float]
    initial: InitialState
    terminal_soc_fraction: dict[str, float] | None = None

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        series = {f"load_kw[{k}]": v for k, v in self.load_kw.items()}
        series |= {f"pv_kw[{k}]": v for k, v in self.pv_kw.items()}
        series["import_price_eur_per_kwh"] = self.import_price_eur_per_kwh
        series["export_price_eur_per_kwh"] = self.export_price_eur_per_kwh
        for name, values in series.items():
            if len(values) != self.steps:
                raise ValueError(f"{name} has {len(values)} values; steps is {self.steps}")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{name} holds a value that is not a finite number")
            if name.startswith(("load_kw", "pv_kw")) and min(values) < 0:
                raise ValueError(
                    f"{name} has a negative value ({min(values):g}); demand and "
                    "PV output are >= 0 kW"
                )
        return self

    def check_against(self, site: SiteConfig) -> None:
        """Every asset of the site has a series, and nothing else does."""

        def same(what: str, given: set[str], wanted: set[str]) -> None:
            if given != wanted:
                raise ValueError(f"{what}: expected ids {sorted(wanted)}, got {sorted(given)}")

        same("load_kw", set(self.load_kw), {ld.id for ld in site.assets.loads})
        same("pv_kw", set(self.pv_kw), {p.id for p in site.assets.pv})
        same(
            "initial.soc_fraction",
            set(self.initial.soc_fraction),
            {b.id for b in site.assets.batteries},
        )
        for b in site.assets.batteries:
            soc = self.initial.soc_fraction[b.id]
            if not 0.0 <= soc <= 1.0:
                raise ValueError(f"initial.soc_fraction[{b.id}] = {soc} must be within [0, 1]")


def window_inputs(
    site: SiteConfig,
    start: datetime,
    step_s: int,
    load_kw: Mapping[str, Sequence[float]],
    pv_kw: Mapping[str, Sequence[float]],
    initial: InitialState,
    prices: tuple[Sequence[float], Sequence[float]] | None = None,
) -> PlanInputs:
    """The one way a plan's inputs are made, live (`tools/plan.py`, from forecasts) and
    in the closed loop (from the truth or a forecaster): per-asset series from `start`,
    (import, export) prices from the tariff unless the data brings its own."""
    steps = len(next(iter(load_kw.values()))) if load_kw else len(next(iter(pv_kw.values())))
    if prices is None:
        times = [start + timedelta(seconds=i * step_s) for i in range(steps)]
        pairs = prices_eur_per_kwh(site, times)
        prices = ([p[0] for p in pairs], [p[1] for p in pairs])
    return PlanInputs(
        start=start,
        step_s=step_s,
        steps=steps,
        load_kw={k: [float(x) for x in v] for k, v in load_kw.items()},
        pv_kw={k: [float(x) for x in v] for k, v in pv_kw.items()},
        import_price_eur_per_kwh=[float(x) for x in prices[0]],
        export_price_eur_per_kwh=[float(x) for x in prices[1]],
        initial=initial,
        # A battery with an end-of-day floor ends each plan at the floor or above: the
        # next plan starts from what this one leaves, and nights need the reserve.
        terminal_soc_fraction={
            b.id: b.end_of_day_soc_fraction
            for b in site.assets.batteries
            if b.end_of_day_soc_fraction is not None
        }
        or None,
    )


def profile_window(
    site: SiteConfig, profiles: SiteProfiles, t: int, n: int, initial: InitialState
) -> PlanInputs:
    """Steps t..t+n of profiles (the truth, or what a forecaster saw) as plan inputs."""
    return window_inputs(
        site,
        profiles.times[t],
        profiles.step_s,
        {k: v[t : t + n] for k, v in profiles.load_kw.items()},
        {k: v[t : t + n] for k, v in profiles.pv_kw.items()},
        initial,
        (
            profiles.import_price_eur_per_kwh[t : t + n],
            profiles.export_price_eur_per_kwh[t : t + n],
        ),
    )


def inputs_from_profiles(
    site: SiteConfig, profiles: SiteProfiles, initial: InitialState
) -> PlanInputs:
    return profile_window(site, profiles, 0, len(profiles.times), initial)


def initial_from_readings(
    site: SiteConfig,
    soc_fraction: Mapping[str, float | None],
    relay_on: Mapping[str, bool | None],
    peaker_running: Mapping[str, bool | None],
    peak_import_kw_so_far: float,
) -> InitialState:
    """The state a live plan starts from. A battery with no reading yet starts at its
    configured SoC; a reading of 0.0 is a reading (an empty battery), not a gap. A relay
    not heard from counts as on: planning for its load is the safe side."""
    return InitialState(
        soc_fraction={
            b.id: b.initial_soc_fraction if soc_fraction.get(b.id) is None else soc_fraction[b.id]
            for b in site.assets.batteries
        },
        relay_on={ld.id: relay_on.get(ld.id) is not False for ld in site.assets.loads},
        peaker_on={g.id: bool(peaker_running.get(g.id)) for g in site.assets.peakers},
        peak_import_kw_so_far=peak_import_kw_so_far,
    )


def initial_state(site: SiteConfig) -> InitialState:
    """The site as configured at rest: batteries at their initial SoC, every relay on,
    peakers off."""
    return InitialState(
        soc_fraction={b.id: b.initial_soc_fraction for b in site.assets.batteries},
        relay_on={ld.id: True for ld in site.assets.loads},
        peaker_on={g.id: False for g in site.assets.peakers},
    )
