"""What a plan is made from: forecasts, prices and the site's present state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import numpy as np
from pydantic import BaseModel, Field, model_validator

from grid.config import SiteConfig
from grid.profiles import SiteProfiles

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


def inputs_from_profiles(
    site: SiteConfig, profiles: SiteProfiles, initial: InitialState
) -> PlanInputs:
    return PlanInputs(
        start=profiles.times[0],
        step_s=profiles.step_s,
        steps=len(profiles.times),
        load_kw={k: [float(x) for x in v] for k, v in profiles.load_kw.items()},
        pv_kw={k: [float(x) for x in v] for k, v in profiles.pv_kw.items()},
        import_price_eur_per_kwh=[float(x) for x in profiles.import_price_eur_per_kwh],
        export_price_eur_per_kwh=[float(x) for x in profiles.export_price_eur_per_kwh],
        initial=initial,
    )


def initial_state(site: SiteConfig) -> InitialState:
    """The site as configured at rest: batteries at their initial SoC, every relay on,
    peakers off."""
    return InitialState(
        soc_fraction={b.id: b.initial_soc_fraction for b in site.assets.batteries},
        relay_on={ld.id: True for ld in site.assets.loads},
        peaker_on={g.id: False for g in site.assets.peakers},
    )
