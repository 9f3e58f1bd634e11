"""The grid connection and the objective: import and export within their limits, the
energy balance of the site bus, the peak import, and the weighted cost terms.

Families per step: `import_limit`, `export_limit` (soft: slacks `import_limit:{t}`,
`export_limit:{t}`), `balance`, `peak`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulp

from grid.config import SiteConfig
from optimization.inputs import PlanInputs
from optimization.plan import demand_periods

if TYPE_CHECKING:
    from optimization.model import Model


def add(m: Model, site: SiteConfig, inputs: PlanInputs) -> None:
    """Run last: the balance sums what the asset builders put on the bus."""
    dt_h = inputs.step_s / 3600
    imp_cap = site.grid.import_limit_kw
    exp_cap = site.grid.export_limit_kw
    periods = demand_periods(site, inputs)
    peaks = [pulp.LpVariable(f"peak_import_kw_{i}", low) for i, (low, _) in enumerate(periods)]
    of_step = {t: peaks[i] for i, (_, steps) in enumerate(periods) for t in steps}
    m.peak = peaks[0]
    for t in range(inputs.steps):
        imp = m.grid_import[t] = pulp.LpVariable(f"imp_{t}", 0)
        exp = m.grid_export[t] = pulp.LpVariable(f"exp_{t}", 0)
        if m.soft:
            m.add("import_limit", imp <= imp_cap + m.slack(f"import_limit:{t}"), t)
            m.add("export_limit", exp <= exp_cap + m.slack(f"export_limit:{t}"), t)
        else:
            m.add("import_limit", imp <= imp_cap, t)
            m.add("export_limit", exp <= exp_cap, t)
        m.add("balance", imp - exp + pulp.lpSum(m.supply[t]) == pulp.lpSum(m.demand[t]), t)
        m.add("peak", of_step[t] >= imp, t)
        m.cost["energy"].append(
            (inputs.import_price_eur_per_kwh[t] * imp - inputs.export_price_eur_per_kwh[t] * exp)
            * dt_h
        )
    # The full rate on every kW above the period's peak so far, as the bill charges it:
    # a prorated rate let daily plans raise the peak cheaply and sit at the import limit.
    rate = site.tariff.demand_charge_eur_per_kw
    for peak, (before, _) in zip(peaks, periods, strict=True):
        m.cost["demand_charge"].append(rate * (peak - before))


def objective(m: Model, weights: dict[str, float]) -> None:
    terms = [weights[k] * pulp.lpSum(v) for k, v in m.cost.items()]
    m.prob += pulp.lpSum(terms) + pulp.lpSum(m.penalties) + pulp.lpSum(m.tie_break)
