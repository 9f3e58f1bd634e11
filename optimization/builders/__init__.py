"""One MILP builder per kind of asset; each adds its variables and named constraint
families to an `optimization.model.Model`."""

from __future__ import annotations

import math


def steps_covering(seconds: float, step_s: int) -> int:
    """Whole steps that cover `seconds` (none for zero, negative or -inf)."""
    return 0 if seconds <= 0 else math.ceil(seconds / step_s)
