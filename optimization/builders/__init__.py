"""One MILP builder per kind of asset; each adds its variables and named constraint
families to an `optimization.model.Model`."""

from __future__ import annotations

import math

# Equal-cost plans are common (flat tariff periods, interchangeable steps). A cost far
# below any real one (a millionth of a euro per kWh, distinct per step and asset) makes
# the cheapest plan unique, so repeated and warm-started solves return the same plan
# and branch-and-bound does not wander among copies of one solution.
TIE_BREAK_EUR = 1e-6


def tie_break_eur(rank: int, asset_index: int) -> float:
    """The tie-break price of one unit at `rank` (1 = cheapest) for the asset-th asset."""
    return TIE_BREAK_EUR * (1 + rank / 10_000 + asset_index / 100)


def steps_covering(seconds: float, step_s: int) -> int:
    """Whole steps that cover `seconds` (none for zero, negative or -inf)."""
    return 0 if seconds <= 0 else math.ceil(seconds / step_s)
