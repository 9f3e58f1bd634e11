"""PV: output up to what is available, or exactly that when it cannot be curtailed.

No constraint families: curtailment is the variable's upper bound."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.inputs import PlanInputs

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    for p in site.assets.pv:
        for t in range(inputs.steps):
            available = inputs.pv_kw[p.id][t]
            if p.curtailable:
                m.pv[p.id, t] = pulp.LpVariable(f"pv_{p.id}_{t}", 0, available)
            else:
                m.pv[p.id, t] = available
            m.supply[t].append(m.pv[p.id, t])
