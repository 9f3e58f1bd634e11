"""The MILP: battery, relays, peaker and PV over a horizon, built with PuLP.

Each kind of asset has its own builder in `optimization/builders/`; every builder adds
named variables and constraints named `{family}_{asset}_{t}`, so a diagnosis or a
profile can say which family a row belongs to. `build` runs them in a fixed order
and `grid_and_costs` closes the energy balance and states the objective.

Demand charge as the bill charges it: each billing period's peak is paid once, at
the full rate (`tariff.demand_charge_eur_per_kw`), so a plan pays the full rate on any
kW above the peak its period has reached so far, and a period that begins inside the
horizon starts from zero (`optimization.plan.demand_periods`). An end-of-day SoC floor
holds at each site-local midnight the horizon crosses.

With `soft=True` the constraints that can be missed (terminal SoC, the import and
export limits, serving critical loads) get priced slack variables, so a model that
is infeasible as stated still solves and the slack says what could not be met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pulp

from grid.config import SiteConfig
from optimization.builders import battery, grid_and_costs, loads, peakers, pv
from optimization.inputs import PlanInputs

# Slack is priced far above any real cost so it is used only where nothing else works.
SLACK_EUR_PER_KWH = 1_000.0
WEIGHTS = ("energy", "demand_charge", "degradation", "shed_load", "fuel", "switching")

Var = pulp.LpVariable


@dataclass
class Model:
    prob: pulp.LpProblem
    steps: int
    soft: bool = False
    charge: dict[tuple[str, int], Var] = field(default_factory=dict)
    discharge: dict[tuple[str, int], Var] = field(default_factory=dict)
    soc_kwh: dict[tuple[str, int], Var] = field(default_factory=dict)
    on: dict[tuple[str, int], Var | int] = field(default_factory=dict)
    switch: dict[tuple[str, int], Var] = field(default_factory=dict)
    pv: dict[tuple[str, int], Var | float] = field(default_factory=dict)
    peaker_kw: dict[tuple[str, int], Var] = field(default_factory=dict)
    peaker_on: dict[tuple[str, int], Var] = field(default_factory=dict)
    grid_import: dict[int, Var] = field(default_factory=dict)
    grid_export: dict[int, Var] = field(default_factory=dict)
    peak: Var | None = None
    slacks: dict[str, Var] = field(default_factory=dict)  # name -> slack variable
    # constraint family -> how many rows it holds, in the order the builders added them
    families: dict[str, int] = field(default_factory=dict)
    supply: dict[int, list] = field(default_factory=dict)  # kW into the site bus per step
    demand: dict[int, list] = field(default_factory=dict)  # kW out of it
    cost: dict[str, list] = field(default_factory=lambda: {k: [] for k in WEIGHTS})
    penalties: list = field(default_factory=list)
    battery_modes: bool = False  # forbid charging and discharging at once by a binary
    tie_break: list = field(default_factory=list)  # see builders.TIE_BREAK_EUR
    # families left out on purpose: the diagnosis drops one at a time to find the culprit
    skip: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.supply = self.supply or {t: [] for t in range(self.steps)}
        self.demand = self.demand or {t: [] for t in range(self.steps)}

    def add(self, family: str, constraint: pulp.LpConstraint, *key: object) -> None:
        """Add one row named `{family}_{key...}` and count it under its family."""
        if family in self.skip:
            return
        name = "_".join([family, *(str(k) for k in key)])
        self.prob += constraint, name
        self.families[family] = self.families.get(family, 0) + 1

    def slack(self, name: str) -> Var:
        """A priced slack variable; `name` is `kind:asset:step` for the diagnosis."""
        var = pulp.LpVariable(f"slack_{name}", lowBound=0)
        self.slacks[name] = var
        self.penalties.append(SLACK_EUR_PER_KWH * var)
        return var


def check_weights(weights: dict[str, float] | None) -> dict[str, float]:
    out = dict.fromkeys(WEIGHTS, 1.0)
    for key, value in (weights or {}).items():
        if key not in out:
            raise ValueError(
                f"objective_weights: unknown term {key!r}; one of {', '.join(WEIGHTS)}"
            )
        if not 0.0 <= value <= 100.0 or math.isnan(value):
            raise ValueError(f"objective_weights[{key}] = {value} must be within [0, 100]")
        out[key] = value
    return out


def empty(
    inputs: PlanInputs,
    soft: bool = False,
    skip: frozenset[str] = frozenset(),
    battery_modes: bool = False,
) -> Model:
    """A model with no rows yet: what each builder extends, alone in its tests."""
    prob = pulp.LpProblem("gridpilot", pulp.LpMinimize)
    return Model(prob, inputs.steps, soft, skip=skip, battery_modes=battery_modes)


def build(
    site: SiteConfig,
    inputs: PlanInputs,
    weights: dict[str, float] | None = None,
    soft: bool = False,
    skip: frozenset[str] = frozenset(),
    battery_modes: bool = False,
) -> Model:
    w = check_weights(weights)
    m = empty(inputs, soft, skip, battery_modes)
    battery.add(m, site, inputs)
    pv.add(m, site, inputs)
    loads.add(m, site, inputs)
    peakers.add(m, site, inputs)
    grid_and_costs.add(m, site, inputs)
    grid_and_costs.objective(m, w)
    return m
